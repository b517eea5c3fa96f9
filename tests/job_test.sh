#!/usr/bin/env bash
# `rapid job` and `rapid postproc-job`: a reference job, science jobs on
# its reference and on an existing one, post-processing; the manifest
# against the files, the log's last line, the exit codes of a bad
# configuration, a missing input, an interrupted and a killed job.
set -u
rapid=$1
tmp=${RAPID_TEST_TMP:-/tmp}/job-test.$$; rm -rf "$tmp"; mkdir -p "$tmp"
. "$(dirname "$0")/checks.sh"
export TESTS_DIR="$(cd "$(dirname "$0")" && pwd)"
# the log's last line is "terminating_exitcode = N"
last_line() { [ "$(tail -n 1 "$1/job.log" 2>/dev/null)" = "terminating_exitcode = $2" ]; }
# the manifest parses, says exit code $2, and lists every file of the
# directory but the manifest and the log, each of its size and MD5; the
# directory holds nothing else, and no temporaries are left beside it
manifest_ok() {
  /usr/bin/python3 - "$1" "$2" <<'PY' || return 1
import hashlib, json, os, sys
d, code = sys.argv[1], int(sys.argv[2])
m = json.load(open(os.path.join(d, "manifest.json")))
assert m["exitcode"] == code, m["exitcode"]
paths = set()
for f in m["products"]:
    assert os.path.dirname(f["path"]) == d, f["path"]
    assert os.path.getsize(f["path"]) == f["size"], f["path"]
    assert hashlib.md5(open(f["path"], "rb").read()).hexdigest() == f["md5"], f["path"]
    paths.add(os.path.basename(f["path"]))
assert len(paths) == len(m["products"])
assert set(os.listdir(d)) == paths | {"manifest.json", "job.log"}, set(os.listdir(d)) ^ paths
assert not [e for e in os.listdir(os.path.dirname(d)) if e.startswith(".")]
assert all({"name", "seconds", "cpu_seconds", "peak_rss_mb"} <= set(s) for s in m["stages"])
assert all(s["cpu_seconds"] >= 0 for s in m["stages"])
assert m["peak_rss_mb"] > 0 and m["elapsed"] >= 0
PY
  last_line "$1" "$2"
}
json_has() { # json_has FILE PYTHON-EXPRESSION-ON-m
  /usr/bin/python3 -c 'import json, sys; m = json.load(open(sys.argv[1])); sys.exit(0 if ('"$2"') else 1)' "$1"
}

"$rapid" sim --out "$tmp/s" --size 512 --scas 1 --epochs 4 --seed 9 >/dev/null || { echo "FAIL sim"; exit 1; }
rtid=$("$rapid" tile 9.6 -44.0 | sed 's/.*"rtid": \([0-9]*\).*/\1/')
s=$tmp/s
W=$tmp/work
J=$W/jobs/20261207
P=$W/products/20261207
mkdir -p "$J"
sci=$s/Roman_TDS_simple_model_H158_4_1.fits

# --- the command line
check job-help 0 "$rapid" job --help
expect "job help" "$(grep -q 'usage: rapid job' <<<"$out" && grep -q '^Exit status: 0 ' <<<"$out" && grep -q '2 bad usage' <<<"$out"; echo $?)"
check postproc-job-help 0 "$rapid" postproc-job --help
expect "postproc-job help" "$(grep -q 'usage: rapid postproc-job' <<<"$out" && grep -q '^Exit status: 0 ' <<<"$out"; echo $?)"
check help-lists-job 0 "$rapid" --help
expect "rapid --help lists job and postproc-job" "$(grep -q '^  job ' <<<"$out" && grep -q '^  postproc-job ' <<<"$out"; echo $?)"
check job-no-config 2 "$rapid" job
check job-two-configs 2 "$rapid" job a.ini b.ini
check job-bad-option 2 "$rapid" job --frob a.ini

# --- a reference job (ppid 12): the reference built, nothing else
cat >"$J/jid1.ini" <<CFG
[job]
jid = 1
ppid = 12                ; a reference job
procdate = 20261207
out = $P/jid1
threads = 1

[reference]
source = build
field = $rtid
filter = F158
fid = 2
size = 768
ninputs = 3
input.1.rid = 11
input.1.image = $s/Roman_TDS_simple_model_H158_1_1.fits
input.2.rid = 12
input.2.image = $s/Roman_TDS_simple_model_H158_2_1.fits
input.3.rid = 13
input.3.image = $s/Roman_TDS_simple_model_H158_3_1.fits
input.3.psf = $s/psf/Roman_WFI_PSF_H158_1.fits
CFG
check refjob 0 "$rapid" job "$J/jid1.ini"
expect "refjob: manifest, products, log" "$(manifest_ok "$P/jid1" 0; echo $?)"
expect "refjob: the reference in the manifest" "$(json_has "$P/jid1/manifest.json" 'm["ppid"] == 12 and "science" not in m and "diffs" not in m and m["reference"]["source"] == "built" and sorted(m["reference"]["inputs"]) == [11, 12, 13] and m["reference"]["meta"]["nframes"] == 3 and set(m["reference"]["products"]) == {"image", "cov", "unc", "psf", "catalog"} and m["reference"]["field"] == '"$rtid"' and m["reference"]["products"]["image"]["path"].endswith("/rapid_ref_'"$rtid"'_H158.fits")'; echo $?)"
expect "refjob: log lines on stderr too" "$(grep -q 'rapid job: stage reference' <<<"$err" && grep -q 'terminating_exitcode = 0' <<<"$err"; echo $?)"
ref=$P/jid1/rapid_ref_${rtid}_H158.fits

# --- a science job on the reference job's reference
cat >"$J/jid2.ini" <<CFG
[job]
jid = 2
ppid = 15
procdate = 20261207
out = $P/jid2

[science]
rid = 4
expid = 4
sca = 1
fid = 2
filter = H158
field = $rtid
image = $sci
psf =

[reference]
source = job
refjid = 1
dir = $P/jid1

[diff]
methods = zogy,sfft,naive
sfft_order = 0

[cuts]
snr_min = 5
CFG
"$rapid" job -q "$J/jid2.ini"; code=$?
n=$((n+1)); case $code in 0|4) ;; *) echo "FAIL science job (source job): exit $code"; fail=$((fail+1));; esac
expect "science job: manifest, products, log" "$(manifest_ok "$P/jid2" $code; echo $?)"
# the kernel fit may fail for want of stamps on so small an image: then
# exit 4, and the manifest says so
expect "science job: the diffs in the manifest" "$(json_has "$P/jid2/manifest.json" '[d["method"] for d in m["diffs"]] == ["zogy", "sfft", "naive"] and [d["method_id"] for d in m["diffs"]] == [1, 2, 3] and m["diffs"][0]["status"] == "ok" and m["diffs"][2]["status"] == "ok" and (m["diffs"][1]["status"] == "ok") == ('"$code"' == 0) and all(d["status"] == "ok" or d["message"] for d in m["diffs"]) and set(m["diffs"][0]["products"]) == {"diff", "unc", "psf", "scorr", "catalog"} and set(m["diffs"][2]["products"]) == {"diff", "unc", "catalog"} and all(d["ncand"] >= d["npass"] >= 0 and len(d["footprint"]["ra"]) == 5 and d["meta"]["nsexcatsources"] == d["ncand"] for d in m["diffs"] if d["status"] == "ok") and m["reference"] == {"source": "job", "refjid": 1, "field": '"$rtid"', "fid": 2} and m["science"]["rid"] == 4 and m["science"]["image"] == "'"$sci"'"'; echo $?)"
expect "science job: ZOGY candidates" "$(json_has "$P/jid2/manifest.json" 'm["diffs"][0]["ncand"] > 0'; echo $?)"

# ... on two threads: ZOGY and the kernel fit side by side, each with its
# candidates, the images written as each ends; the same exit code, the
# same products to the bit (header cards of dates and versions aside) and
# the same candidates as on one thread, the stages all there
sed -e "s|^jid = 2|jid = 19|; s|$P/jid2\$|$P/jid19|; s|^out = $P/jid2|out = $P/jid19|" "$J/jid2.ini" |
  sed -e '/^\[job\]/a threads = 2' >"$J/jid19.ini"
"$rapid" job -q "$J/jid19.ini"; code19=$?
expect "science job on two threads: exit $code19 as on one ($code)" "$( [ $code19 = $code ]; echo $?)"
expect "science job on two threads: manifest, products, log" "$(manifest_ok "$P/jid19" $code19; echo $?)"
expect "science job on two threads: the same products, candidates and stages as on one" "$(/usr/bin/python3 - "$P/jid2" "$P/jid19" <<'PY'
import json, os, sys
a, b = sys.argv[1:]
sys.dont_write_bytecode = True
sys.path.insert(0, os.environ["TESTS_DIR"])
from fits_masked import masked  # the file with the cards of dates and versions blanked
fa = sorted(f for f in os.listdir(a) if f.endswith(".fits"))
fb = sorted(f for f in os.listdir(b) if f.endswith(".fits"))
ok = fa == fb and len(fa) > 0 and all(masked(os.path.join(a, f)) == masked(os.path.join(b, f)) for f in fa)
ma, mb = (json.load(open(os.path.join(d, "manifest.json"))) for d in (a, b))
key = lambda m: [(d["method"], d["status"], d.get("ncand"), d.get("npass")) for d in m["diffs"]]
names = [s["name"] for s in mb["stages"]]
ok = ok and key(ma) == key(mb) and all(n in names for n in ("read", "prepare", "zogy", "sfft", "naive", "candidates", "write"))
sys.exit(0 if ok else 1)
PY
echo $?)"

# --- a science job on an existing reference, two methods, run as the
# executor runs it (stderr appended to the job's log): the log whole
cat >"$J/jid3.ini" <<CFG
[job]
jid = 3
ppid = 15
procdate = 20261207
out = $P/jid3
[science]
rid = 4
image = $sci
[reference]
source = existing
rfid = 9
image = $ref
[diff]
methods = zogy, naive
CFG
mkdir -p "$P/jid3"; echo "launched" >"$P/jid3/job.log"
"$rapid" job "$J/jid3.ini" >/dev/null 2>>"$P/jid3/job.log"; code=$?
expect "existing reference: exit 0 ($code)" "$( [ $code = 0 ]; echo $?)"
expect "existing reference: manifest, products, log" "$(manifest_ok "$P/jid3" 0; echo $?)"
expect "existing reference: rfid, two methods" "$(json_has "$P/jid3/manifest.json" 'm["reference"]["source"] == "existing" and m["reference"]["rfid"] == 9 and [d["method"] for d in m["diffs"]] == ["zogy", "naive"]'; echo $?)"
expect "naive candidates fitted with the science PSF (a new source is in the science image alone)" \
  "$(grep -aq "PSFSRC  = 'FILE" "$(ls "$P"/jid3/*_naive_cat.fits)"; echo $?)"
expect "log that stderr appended to: one terminating line" "$( [ "$(grep -c terminating_exitcode "$P/jid3/job.log")" = 1 ]; echo $?)"

expect "existing reference with its maps and PSF: infobitsref 0, infobitssci of the bits documented" "$(json_has "$P/jid3/manifest.json" 'all(d["infobitsref"] == 0 and d["infobitssci"] & ~15 == 0 and not d["infobitssci"] & 1 for d in m["diffs"])'; echo $?)"
# ... a reference without its coverage and uncertainty maps: their bits
mkdir -p "$tmp/bare"; cp "$ref" "$tmp/bare/"; cp "${ref%.fits}_psf.fits" "$tmp/bare/"
sed -e "s|^jid = 3|jid = 17|; s|$P/jid3|$P/jid17|; s|^image = $ref|image = $tmp/bare/$(basename "$ref")|" "$J/jid3.ini" >"$J/jid17.ini"
check bare-reference 0 "$rapid" job -q "$J/jid17.ini"
expect "reference without maps: infobitsref 4 | 8" "$(json_has "$P/jid17/manifest.json" 'all(d["infobitsref"] == 12 for d in m["diffs"])'; echo $?)"
# ... a reference of another part of the sky (its WCS moved 1 degree
# north, maps and PSF beside it): nothing to subtract, a warning code
mkdir -p "$tmp/away"; cp "$ref" "${ref%.fits}"_{cov,unc,psf}.fits "$tmp/away/"
/usr/bin/python3 -c 'import sys; from astropy.io import fits
for f in sys.argv[1:]:
    with fits.open(f, mode="update") as h:
        x = [u for u in h if u.header.get("CRVAL2") is not None][0]
        x.header["CRVAL2"] += 1.0' "$tmp/away/$(basename "$ref")" "$tmp/away/$(basename "${ref%.fits}")"_{cov,unc}.fits
sed -e "s|^jid = 3|jid = 18|; s|$P/jid3|$P/jid18|; s|^image = $ref|image = $tmp/away/$(basename "$ref")|" "$J/jid3.ini" >"$J/jid18.ini"
check reference-elsewhere 34 "$rapid" job -q "$J/jid18.ini"
expect "reference elsewhere: 34, said why, the log alone" "$(last_line "$P/jid18" 34 && grep -q 'the reference does not cover the science image' "$P/jid18/job.log" && [ "$(ls -A "$P/jid18")" = job.log ]; echo $?)"

# --- a science job that builds its reference, on two threads (the
# reference's catalog on a thread of its own while the pair is prepared,
# the methods' candidates two at a time) and on one: the same catalogs
for t in 1 2; do
  { sed -e "s|^jid = 1|jid = 2$t|; s|^ppid = 12 .*|ppid = 15|; s|$P/jid1|$P/jid2$t|; s|^threads = 1|threads = $t|" "$J/jid1.ini" | sed -n '1,/^\[reference\]/p' | sed '$d'
    printf '[science]\nrid = 4\nimage = %s\n\n' "$sci"
    sed -n '/^\[reference\]/,$p' "$J/jid1.ini"
    printf '\n[diff]\nmethods = zogy, naive\n'; } >"$J/jid2$t.ini"
  check "build-in-job-threads-$t" 0 "$rapid" job -q "$J/jid2$t.ini"
  expect "reference built in the job, $t thread(s): manifest, products, log" "$(manifest_ok "$P/jid2$t" 0; echo $?)"
  expect "reference built in the job, $t thread(s): its products, catalog and stages" "$(json_has "$P/jid2$t/manifest.json" 'm["reference"]["source"] == "built" and set(m["reference"]["products"]) == {"image", "cov", "unc", "psf", "catalog"} and m["reference"]["meta"]["nsexcatsources"] > 0 and [s["name"] for s in m["stages"]][:4] == ["reference", "read", "prepare", "reference catalog"] and all(d["status"] == "ok" for d in m["diffs"])'; echo $?)"
done
expect "reference built in the job: the same reference catalog and candidates on one thread and on two" "$(/usr/bin/python3 - "$P/jid21/manifest.json" "$P/jid22/manifest.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
key = lambda m: (m["reference"]["meta"]["nsexcatsources"], [(d["method"], d["ncand"], d["npass"]) for d in m["diffs"]])
sys.exit(0 if key(a) == key(b) else 1)
PY
echo $?)"

# ... the difference took that reference from memory: the same difference
# products, to the bit (the cards of dates and versions aside), and the
# same candidates, as a job that reads the reference's files (an existing
# reference: the files the first job wrote)
for t in 1 2; do
  printf '[job]\njid = 4%s\nppid = 15\nprocdate = 20261207\nout = %s\nthreads = %s\n[science]\nrid = 4\nimage = %s\n[reference]\nsource = existing\nrfid = 9\nimage = %s\n[diff]\nmethods = zogy, naive\n' \
    "$t" "$P/jid4$t" "$t" "$sci" "$P/jid2$t/rapid_ref_${rtid}_H158.fits" >"$J/jid4$t.ini"
  check "reference-files-threads-$t" 0 "$rapid" job -q "$J/jid4$t.ini"
  expect "reference built in the job, $t thread(s): the same difference products from memory as from its files" "$(/usr/bin/python3 - "$P/jid2$t" "$P/jid4$t" <<'PY'
import json, os, sys
mem, files = sys.argv[1:]
sys.dont_write_bytecode = True
sys.path.insert(0, os.environ["TESTS_DIR"])
from fits_masked import masked  # the file with the cards of dates and versions blanked
fm = sorted(f for f in os.listdir(mem) if f.endswith(".fits") and not f.startswith("rapid_ref_"))
ff = sorted(f for f in os.listdir(files) if f.endswith(".fits"))
ok = fm == ff and len(ff) >= 8
bad = [f for f in ff if ok and masked(os.path.join(mem, f)) != masked(os.path.join(files, f))]
ma, mf = (json.load(open(os.path.join(d, "manifest.json"))) for d in (mem, files))
key = lambda m: [(d["method"], d["status"], d.get("ncand"), d.get("npass"), d.get("meta")) for d in m["diffs"]]
if bad or not ok or key(ma) != key(mf):
    print("differ:", bad if ok else (fm, ff), key(ma) != key(mf), file=sys.stderr)
sys.exit(0 if ok and not bad and key(ma) == key(mf) else 1)
PY
echo $?)"
done

# --- post-processing of science job 3
cat >"$J/jid4.ini" <<CFG
[job]
jid = 4
ppid = 17
procdate = 20261207
out = $P/jid4
[postproc]
scijid = 3
dir = $P/jid3
rid = 4
expid = 4
fid = 2
field = $rtid
rfid = 9
pid.zogy = 501
pid.naive = 503
version.zogy = 1
version.naive = 2
refversion = 1
CFG
check postproc 0 "$rapid" postproc-job -q "$J/jid4.ini"
expect "postproc: manifest, products, log" "$(manifest_ok "$P/jid4" 0; echo $?)"
expect "postproc: every product stamped" "$(json_has "$P/jid4/manifest.json" 'm["postproc"]["scijid"] == 3 and len(m["stamped"]) == 8 and len(m["products"]) == 8 and {(s["method"], s["pid"]) for s in m["stamped"]} == {("zogy", 501), ("naive", 503)}'; echo $?)"
zd=$(ls "$P"/jid4/*_zogy_diff.fits)
expect "postproc: the id cards" "$(for c in "PID     =                  501" "RID     =                    4" "RFID    =                    9" "EXPID   =                    4" "FID     =                    2" "FIELD   =              $rtid" "DIFFVER =                    1" "REFVER  =                    1" "CHECKSUM=" "DATASUM =" "LONGSTRN="; do grep -aq "$c" "$zd" || exit 1; done; grep -aq "DIFFVER =                    2" "$(ls "$P"/jid4/*_naive_unc.fits)"; echo $?)"
# PRODLOC: the copy's own path, in long-string pieces (CONTINUE) when long
expect "postproc: PRODLOC is the copy's path" "$(/usr/bin/python3 - "$zd" <<'PY'; echo $?
import sys
raw = open(sys.argv[1], "rb").read(2880 * 4).decode("ascii", "replace")
cards = [raw[i:i + 80] for i in range(0, len(raw), 80)]
i = [k for k, c in enumerate(cards) if c.startswith("PRODLOC =")][0]
val = ""
while True:
    s = cards[i][10:].strip()
    s = s[1:s.index("'", 1)] if s.startswith("'") else ""
    if not s.endswith("&"):
        val += s
        break
    val += s[:-1]
    i += 1
    assert cards[i].startswith("CONTINUE")
sys.exit(0 if val == sys.argv[1] else 1)
PY
)"
if command -v fitsverify >/dev/null; then
  expect "postproc: fitsverify accepts every copy, checksums included" "$(for f in "$P"/jid4/*.fits; do fitsverify -q "$f" | grep -q '^verification OK' || exit 1; done; echo 0)"
  cp "$zd" "$tmp/corrupt.fits"; printf 'A' | dd of="$tmp/corrupt.fits" bs=1 seek=20000 conv=notrunc 2>/dev/null
  expect "fitsverify sees a corrupted copy" "$(! fitsverify -q "$tmp/corrupt.fits" | grep -q '^verification OK'; echo $?)"
fi
if /usr/bin/python3 -c 'import astropy' 2>/dev/null; then
  expect "postproc: astropy verifies the checksums" "$(/usr/bin/python3 - "$P"/jid4/*.fits <<'PY' >/dev/null 2>&1; echo $?
import sys, warnings
from astropy.io import fits
warnings.simplefilter("error")
for p in sys.argv[1:]:
    with fits.open(p, checksum=True) as h:
        h.verify("exception")
PY
)"
fi
check postproc-wrong-ppid 65 "$rapid" postproc-job -q "$J/jid3.ini"
check job-wrong-ppid 65 "$rapid" job -q "$J/jid4.ini"

# --- a bad configuration: 65, the file, line and key named, the log
printf '[job]\njid = 5\nppid = 15\nprocdate = 20261207\nout = %s\nfrob = 1\n' "$P/jid5" >"$J/jid5.ini"
check bad-key 65 "$rapid" job "$J/jid5.ini"
expect "bad key: file, line and key named" "$(grep -q "$J/jid5.ini: line 6: \[job\] unknown key frob" <<<"$err"; echo $?)"
expect "bad key: the log alone" "$(last_line "$P/jid5" 65 && [ "$(ls -A "$P/jid5")" = job.log ]; echo $?)"
printf '[job]\njid = 6\nppid = 15\nprocdate = 20261207\nout = %s\n[science]\nrid = 1\nimage = %s\n' "$P/jid6" "$sci" >"$J/jid6.ini"
check no-reference 65 "$rapid" job -q "$J/jid6.ini"
expect "missing key named" "$(last_line "$P/jid6" 65 && grep -q 'no \[reference\] source' "$P/jid6/job.log"; echo $?)"
printf '[job]\njid = 7\nppid = x\n' >"$J/jid7.ini"
check bad-value 65 "$rapid" job -q "$J/jid7.ini"
expect "bad value: the log where the configuration's name says" "$(last_line "$P/jid7" 65 && grep -q "line 3: \[job\] ppid = 'x'" "$P/jid7/job.log"; echo $?)"
printf '[job]\n[surprise]\nkey = 1\n' >"$J/jid8.ini"
check bad-section 65 "$rapid" job -q "$J/jid8.ini"
expect "unknown section named" "$(grep -q 'line [23]: unknown section \[surprise\]' "$P/jid8/job.log"; echo $?)"
check no-such-config 65 "$rapid" job -q "$tmp/none.ini"
expect "unreadable configuration named" "$(grep -q "$tmp/none.ini" <<<"$err"; echo $?)"

# --- an input that vanished: 66, no products, the log's last line
sed -e "s|^jid = 3|jid = 9|; s|$P/jid3|$P/jid9|; s|^image = $sci|image = $tmp/gone.fits|" "$J/jid3.ini" >"$J/jid9.ini"
check vanished-science 66 "$rapid" job -q "$J/jid9.ini"
expect "vanished science image: named, the log alone" "$(grep -q "$tmp/gone.fits" "$P/jid9/job.log" && last_line "$P/jid9" 66 && [ "$(ls -A "$P/jid9")" = job.log ]; echo $?)"
# a reference job that ended well but whose manifest vanished: 66
mkdir -p "$tmp/nomanifest"; echo "terminating_exitcode = 0" >"$tmp/nomanifest/job.log"
sed -e "s|^jid = 2|jid = 10|; s|$P/jid2|$P/jid10|; s|^dir = $P/jid1|dir = $tmp/nomanifest|" "$J/jid2.ini" >"$J/jid10.ini"
check vanished-refjob 66 "$rapid" job -q "$J/jid10.ini"
expect "vanished reference job: the log alone" "$(last_line "$P/jid10" 66 && [ "$(ls -A "$P/jid10")" = job.log ]; echo $?)"
# a reference job cancelled before it ran (no directory, no log) or
# killed while it ran (a log without its last line): 71, as a failed one
sed -e "s|^jid = 2|jid = 15|; s|$P/jid2|$P/jid15|; s|^dir = $P/jid1|dir = $tmp/nojob|" "$J/jid2.ini" >"$J/jid15.ini"
check cancelled-pending-refjob 71 "$rapid" job -q "$J/jid15.ini"
expect "reference job cancelled before it ran: 71, the log alone" "$(last_line "$P/jid15" 71 && [ "$(ls -A "$P/jid15")" = job.log ] && grep -q 'reference job 1 did not end' "$P/jid15/job.log"; echo $?)"
mkdir -p "$tmp/killedref"; printf 'launched\nrapid job: building the reference image\n' >"$tmp/killedref/job.log"
sed -e "s|^jid = 2|jid = 16|; s|$P/jid2|$P/jid16|; s|^dir = $P/jid1|dir = $tmp/killedref|" "$J/jid2.ini" >"$J/jid16.ini"
check cancelled-running-refjob 71 "$rapid" job -q "$J/jid16.ini"
expect "reference job killed while it ran: 71, the log alone" "$(last_line "$P/jid16" 71 && [ "$(ls -A "$P/jid16")" = job.log ]; echo $?)"
sed -e "s|^jid = 3|jid = 13|; s|$P/jid3|$P/jid13|; s|^image = $sci|image = $sci\npsf = $tmp/gone_psf.fits|" "$J/jid3.ini" >"$J/jid13.ini"
check vanished-psf 66 "$rapid" job -q "$J/jid13.ini"
expect "vanished science PSF: named, the log alone" "$(grep -q "$tmp/gone_psf.fits: the science PSF is missing" "$P/jid13/job.log" && last_line "$P/jid13" 66 && [ "$(ls -A "$P/jid13")" = job.log ]; echo $?)"
# a reference job that failed: 71
mkdir -p "$tmp/failedref"; echo "terminating_exitcode = 67" >"$tmp/failedref/job.log"
sed -e "s|^jid = 2|jid = 11|; s|$P/jid2|$P/jid11|; s|^dir = $P/jid1|dir = $tmp/failedref|" "$J/jid2.ini" >"$J/jid11.ini"
check failed-refjob 71 "$rapid" job -q "$J/jid11.ini"
expect "failed reference job: the log alone" "$(last_line "$P/jid11" 71 && [ "$(ls -A "$P/jid11")" = job.log ]; echo $?)"
# a reference input gone: 66 before anything is built
sed -e "s|^jid = 1|jid = 12|; s|$P/jid1|$P/jid12|; s|H158_2_1.fits|H158_9_1.fits|" "$J/jid1.ini" >"$J/jid12.ini"
check vanished-refinput 66 "$rapid" job -q "$J/jid12.ini"
expect "vanished reference input named" "$(grep -q 'H158_9_1.fits: reference input 2 (rid 12) is missing' "$P/jid12/job.log" && last_line "$P/jid12" 66; echo $?)"

# wait for pid to end: with job control, a stop it was sent (SIGSTOP)
# ends a wait too (128 + 19), although it goes on once continued
wait_end() { local rc; wait "$1"; rc=$?; while [ $rc -gt 128 ] && kill -0 "$1" 2>/dev/null; do wait "$1"; rc=$?; done; return $rc; }

# --- interrupted (SIGTERM) while it works: 70, nothing but the log
set -m # background jobs of a script ignore SIGINT without job control
"$rapid" job -q "$J/jid3.ini" >/dev/null 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && ! compgen -G "$P/.jid3.*" >/dev/null; do sleep 0.001; done
# stopped as soon as it has begun, so that the signal surely finds it at
# work
kill -STOP $pid; kill -TERM $pid; kill -CONT $pid; wait_end $pid; code=$?
set +m
expect "SIGTERM: exit 70 ($code)" "$( [ $code = 70 ]; echo $?)"
expect "SIGTERM: the log alone, no temporaries" "$(last_line "$P/jid3" 70 && [ "$(ls -A "$P/jid3")" = job.log ] && ! compgen -G "$P/.jid3.*" >/dev/null; echo $?)"

# ... a reference job too (the signal arrives while it builds)
sed -e "s|^jid = 1|jid = 14|; s|$P/jid1|$P/jid14|" "$J/jid1.ini" >"$J/jid14.ini"
set -m
"$rapid" job -q "$J/jid14.ini" >/dev/null 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && ! compgen -G "$P/.jid14.*" >/dev/null; do sleep 0.001; done
kill -STOP $pid; kill -TERM $pid; kill -CONT $pid; wait_end $pid; code=$?
set +m
expect "reference job, SIGTERM: exit 70 ($code)" "$( [ $code = 70 ]; echo $?)"
expect "reference job, SIGTERM: the log alone" "$(last_line "$P/jid14" 70 && [ "$(ls -A "$P/jid14")" = job.log ]; echo $?)"

# ... a science job that builds its reference: the signal while the coadd
# runs, then while the methods run.  It ends at once (the coadd stops
# between its inputs, the catalog is not begun, ZOGY and the kernel fit
# stop between their steps): 70, the log alone, no temporaries, and the
# log says where it stopped
sigterm_at() { # sigterm_at JID PATTERN-OF-A-LOG-LINE: the exit code, seconds
  local pid t0 rc
  rm -rf "$P/jid$1"
  set -m
  "$rapid" job "$J/jid$1.ini" >/dev/null 2>"$tmp/err$1" &
  pid=$!
  while kill -0 $pid 2>/dev/null && ! grep -qs "$2" "$tmp/err$1"; do sleep 0.001; done
  kill -STOP $pid; t0=$(date +%s%N); kill -TERM $pid; kill -CONT $pid
  wait_end $pid; rc=$?
  set +m
  echo "$rc $(( ($(date +%s%N) - t0) / 1000000000 ))"
}
for t in 1 2; do
  sed -e "s|^jid = 2$t|jid = 3$t|; s|$P/jid2$t\$|$P/jid3$t|; s|^out = $P/jid2$t|out = $P/jid3$t|; s|^methods = .*|methods = zogy, sfft, naive|" \
    "$J/jid2$t.ini" >"$J/jid3$t.ini"
  read -r code secs < <(sigterm_at 3$t "building the reference image")
  expect "SIGTERM during the coadd, $t thread(s): exit 70 ($code) within 5 s ($secs)" "$( [ $code = 70 ] && [ $secs -lt 5 ]; echo $?)"
  expect "SIGTERM during the coadd, $t thread(s): the log alone, no temporaries" "$(last_line "$P/jid3$t" 70 && [ "$(ls -A "$P/jid3$t")" = job.log ] && ! compgen -G "$P/.jid3$t.*" >/dev/null; echo $?)"
  expect "SIGTERM during the coadd, $t thread(s): stopped in the coadd, no catalog" "$(grep -q 'reference image: interrupted' "$P/jid3$t/job.log" && ! grep -q 'catalog sources' "$P/jid3$t/job.log" && ! grep -q 'stage read' "$P/jid3$t/job.log"; echo $?)"
  read -r code secs < <(sigterm_at 3$t "stage read")
  expect "SIGTERM while the pair is prepared, $t thread(s): exit 70 ($code) within 5 s ($secs)" "$( [ $code = 70 ] && [ $secs -lt 5 ]; echo $?)"
  expect "SIGTERM while the pair is prepared, $t thread(s): the log alone, no temporaries" "$(last_line "$P/jid3$t" 70 && [ "$(ls -A "$P/jid3$t")" = job.log ] && ! compgen -G "$P/.jid3$t.*" >/dev/null; echo $?)"
  expect "SIGTERM while the pair is prepared, $t thread(s): stopped in the preparation" "$(grep -q 'preparing the difference: interrupted' "$P/jid3$t/job.log" && ! grep -q 'stage prepare' "$P/jid3$t/job.log"; echo $?)"
  read -r code secs < <(sigterm_at 3$t "stage prepare")
  expect "SIGTERM before the methods, $t thread(s): exit 70 ($code) within 5 s ($secs)" "$( [ $code = 70 ] && [ $secs -lt 5 ]; echo $?)"
  expect "SIGTERM before the methods, $t thread(s): the log alone, no temporaries" "$(last_line "$P/jid3$t" 70 && [ "$(ls -A "$P/jid3$t")" = job.log ] && ! compgen -G "$P/.jid3$t.*" >/dev/null; echo $?)"
  expect "SIGTERM before the methods, $t thread(s): ZOGY and the kernel fit stopped, no candidates" "$(grep -q 'zogy stopped: .*interrupted' "$P/jid3$t/job.log" && grep -q 'sfft stopped: .*interrupted' "$P/jid3$t/job.log" && ! grep -q 'candidates' "$P/jid3$t/job.log"; echo $?)"
done

# --- killed (SIGKILL) half-way, then run again: one whole set, the same
# files as the first run's
before=$(ls "$P/jid2")
"$rapid" job -q "$J/jid2.ini" >/dev/null 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null && ! compgen -G "$P/.jid2.*" >/dev/null; do sleep 0.001; done
sleep 0.05
kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null; code=$?
[ $code = 137 ] && expect "killed: no manifest, no terminating line, no earlier products" "$( [ ! -e "$P/jid2/manifest.json" ] && ! last_line "$P/jid2" 0 && ! last_line "$P/jid2" 4 && [ -z "$(ls "$P/jid2" 2>/dev/null | grep fits)" ]; echo $?)"
"$rapid" job -q "$J/jid2.ini"; code=$?
expect "killed, then run again: one whole set ($code)" "$(manifest_ok "$P/jid2" $code && [ "$(ls "$P/jid2")" = "$before" ]; echo $?)"

rm -rf "$tmp"
echo "job: $((n-fail)) passed, $fail failed"
[ $fail -eq 0 ]
