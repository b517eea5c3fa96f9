#!/usr/bin/env bash
# The four steps, `rapid run` and `rapid status` on SQLite with a simulated
# survey (two tiles, two detectors, six visits of 256^2 pixels) and jobs
# played by fake_job (RAPID_JOB_CMD): end to end, re-run, killed (SIGKILL)
# at several points and re-run, failed reference jobs, too few prior
# images, a corrupt manifest, a missing product, a missing log.
#   steps_test.sh PATH/TO/rapid PATH/TO/fake_job [main|kill]
# (two halves, so that each stays short under the sanitizers)
set -u
rapid=$1
export RAPID_JOB_CMD=$2
part=${3:-all}
tmp=${RAPID_TEST_TMP:-/tmp}/steps.$$
rm -rf "$tmp"; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
unset RAPID_DB STARTDATETIME ENDDATETIME JOBPROCDATE FAKE_JOB_EXIT FAKE_JOB_EXIT_REF \
  FAKE_JOB_SLEEP FAKE_JOB_CORRUPT FAKE_JOB_FAIL_METHOD FAKE_JOB_RECORD
export JOBPROCDATE=20261207

. "$(dirname "$0")/checks.sh"
same() { # same NAME GOT WANT
  n=$((n+1))
  if [ "$2" != "$3" ]; then echo "FAIL $1: got '$2', wanted '$3'"; fail=$((fail+1)); fi
}
q() { sqlite3 "$W/rapid.db" "$1"; }

# --- the survey, ingested once; every case starts from a copy
sim=$tmp/sim; base=$tmp/base
"$rapid" sim --out "$sim" --seed 1 --size 256 --scas 2 --epochs 6 --tiles 2 >/dev/null 2>&1 ||
  { echo "FAIL: rapid sim"; exit 1; }
"$rapid" db init --db "sqlite:$base/rapid.db" 2>/dev/null &&
  "$rapid" ingest --db "sqlite:$base/rapid.db" "$sim" >/dev/null 2>&1 &&
  "$rapid" ingest-psf --db "sqlite:$base/rapid.db" "$sim/psf" >/dev/null 2>&1 ||
  { echo "FAIL: ingest"; exit 1; }
fresh() { # a new work directory with the ingested database: $W
  W=$tmp/$1; rm -rf "$W"; mkdir -p "$W"; cp "$base/rapid.db" "$W/"
  export RAPID_WORK=$W
}
# Visits every 5 days from 2028-09-07: the last three are launched, the
# first three are the prior images of each tile's reference.
range=(--start 2028-09-20 --end 2028-10-05)

# The rows a complete night leaves: 2 reference jobs, 12 science jobs,
# 12 post-processing jobs all ended 0; 2 reference images of 6 inputs;
# 36 difference images, best, each post-processed.
complete() { # complete CASE
  same "$1: jobs" "$(q 'select ppid, count(*), sum(status), max(exitcode) from jobs group by ppid')" \
    "$(printf '12|2|2|0\n15|12|12|0\n17|12|12|0')"
  same "$1: reference images" "$(q 'select count(*), sum(vbest), sum(status) from refimages')" "2|2|2"
  same "$1: reference inputs" "$(q 'select count(*), count(distinct rfid) from refimimages')" "12|2"
  same "$1: reference metadata, catalogs" "$(q 'select (select count(*) from refimmeta), (select count(*) from refimcatalogs)')" "2|2"
  same "$1: difference images" "$(q 'select count(*), sum(vbest), sum(status), count(distinct rid), max(version) from diffimages')" "36|36|36|12|1"
  same "$1: difference metadata" "$(q 'select count(*) from diffimmeta')" "36"
  same "$1: every difference image post-processed" \
    "$(q "select count(*) from diffimages where filename like '%/post_diff_%' and rfid is not null")" "36"
  same "$1: software version" "$(q 'select count(*) from swversions')" "1"
}

if [ "$part" != kill ]; then
# --- usage
for c in launch register postproc register-postproc run status; do
  check "$c --help" 0 "$rapid" "$c" --help
  expect "$c --help names docs" "$(grep -q 'docs/operations.md' <<<"$out"; echo $?)"
done
check help-lists-run 0 "$rapid" --help
expect "rapid --help lists register-postproc" "$(grep -q '^  register-postproc ' <<<"$out"; echo $?)"
fresh usage
check launch-no-range 2 "$rapid" launch
expect "missing --start named" "$(grep -q -- '--start (or $STARTDATETIME) is required' <<<"$err"; echo $?)"
check launch-bad-time 2 "$rapid" launch --start 2028-13-40 --end 2028-10-05
check launch-backwards 2 "$rapid" launch --start 2028-10-05 --end 2028-09-20
check bad-procdate 2 "$rapid" register --procdate 2026120
expect "bad procdate named" "$(grep -q "'2026120'" <<<"$err"; echo $?)"
check bad-executor 2 "$rapid" launch "${range[@]}" --executor batch
check bad-jobs 2 "$rapid" run "${range[@]}" --jobs 0
check operand 2 "$rapid" status extra
check run-none 2 "$rapid" run "${range[@]}" --executor none
printf '[launch]\nref_min_inputs = 3\n[cuts]\nsnr = 4\n' >"$W/bad.ini"
check bad-config 1 "$rapid" status --config "$W/bad.ini"
expect "bad key: file, line, key" "$(grep -q 'bad.ini: line 4: unknown key snr in \[cuts\]' <<<"$err"; echo $?)"
printf '[launcher]\njobs = 2\n' >"$W/rapid.ini"
check bad-work-config 1 "$rapid" status
expect "WORK/rapid.ini read" "$(grep -q 'rapid.ini: line 2: unknown section \[launcher\]' <<<"$err"; echo $?)"
check missing-config 1 "$rapid" status --config "$W/none.ini"
check no-database 1 "$rapid" status --db "sqlite:$tmp/nothing/rapid.db"

# --- end to end, then again: nothing new
fresh e2e
export FAKE_JOB_RECORD=$W/runs
check run 0 "$rapid" run "${range[@]}"
complete e2e
same "e2e: each job run once" "$(wc -l <"$W/runs")" "26"
expect "e2e: summary passing" "$(grep -q 'passing the cuts: 72' <<<"$out"; echo $?)"
expect "e2e: progress lines" "$(grep -q 'rapid run: jobs 14/14' <<<"$err"; echo $?)"
# (which job records itself first is a race between the children started
# together; the order is checked exactly from the trace below)
expect "e2e: a reference job ran first" "$(head -1 "$W/runs" | grep -q '^12 '; echo $?)"
# --- a reference version locked by hand, and unlocked
rfid=$(q 'select min(rfid) from refimages')
check lock-reference 0 "$rapid" db lock-reference "$rfid" --db "sqlite:$W/rapid.db"
same "locked: vbest 2" "$(q "select vbest from refimages where rfid = $rfid")" "2"
expect "lock said" "$(grep -q "reference image $rfid .* locked" <<<"$err"; echo $?)"
check unlock-reference 0 "$rapid" db unlock-reference "$rfid" --db "sqlite:$W/rapid.db"
same "unlocked: vbest 1" "$(q "select vbest from refimages where rfid = $rfid")" "1"
check lock-unknown 1 "$rapid" db lock-reference 999999 --db "sqlite:$W/rapid.db"
check lock-no-rfid 2 "$rapid" db lock-reference --db "sqlite:$W/rapid.db"
check lock-bad-rfid 2 "$rapid" db lock-reference 12x --db "sqlite:$W/rapid.db"
check lock-two-rfids 2 "$rapid" db lock-reference 1 2 --db "sqlite:$W/rapid.db"
expect "e2e: configs" "$(ls "$W/jobs/20261207/" | grep -c '^jid.*\.ini$' | grep -q 26; echo $?)"
expect "e2e: science config names its reference job" \
  "$(grep -l 'source = job' "$W"/jobs/20261207/*.ini | wc -l | grep -q 12; echo $?)"
check run-again 0 "$rapid" run "${range[@]}" --json
complete "e2e again"
same "e2e again: nothing run" "$(wc -l <"$W/runs")" "26"
expect "e2e: json summary" "$(grep -q '^{"procdate": 20261207, "jobs": {"reference": {"total": 2, "unended": 0, "by_exitcode": {"0": 2}}, "science": {"total": 12, "unended": 0, "by_exitcode": {"0": 12}}, "postproc": {"total": 12, "unended": 0, "by_exitcode": {"0": 12}}}, "refimages": 2, "diffimages": 36, "candidates": 360, "passing": 72, "failed": \[\], "seconds": {' <<<"$out"; echo $?)"
check status 0 "$rapid" status --json
expect "status = run's summary" "$(grep -q '"refimages": 2, "diffimages": 36, "candidates": 360, "passing": 72, "failed": \[\]}$' <<<"$out"; echo $?)"
check status-text 0 "$rapid" status
expect "status text" "$(grep -q 'science   jobs: 12, 12 ended 0' <<<"$out"; echo $?)"
unset FAKE_JOB_RECORD

# the executor: at most --jobs at once, a science job only after its
# reference job ended
fresh order
FAKE_JOB_TRACE=$W/trace FAKE_JOB_SLEEP=0.05 check run-order 0 "$rapid" run "${range[@]}" --jobs 3
complete order
same "order: every job traced" "$(grep -c '^+' "$W/trace") $(grep -c '^-' "$W/trace")" "26 26"
same "order: at most 3 at once" "$(awk '/^\+/ {n++; if (n > m) m = n} /^-/ {n--} END {print m}' "$W/trace")" "3"
same "order: science after its reference job" \
  "$(awk '/^- 12 / {done[$3] = 1} /^\+ 15 / && !done[$4] {bad++} END {print bad + 0}' "$W/trace")" "0"
W=$tmp/e2e; export RAPID_WORK=$W

# --- a night of the same images on the next date: the same jids, new versions
check next-night 0 "$rapid" run "${range[@]}" --procdate 20261208
same "next night: jobs reused" "$(q 'select ppid, count(*), min(procdate), max(exitcode) from jobs group by ppid')" \
  "$(printf '12|2|20261207|0\n15|12|20261208|0\n17|12|20261208|0')"
same "next night: reference kept" "$(q 'select count(*) from refimages')" "2"
same "next night: new versions" "$(q 'select count(*), sum(vbest > 0), max(version) from diffimages')" "72|36|2"
expect "next night: existing reference" \
  "$(grep -l 'source = existing' "$W"/jobs/20261208/*.ini | wc -l | grep -q 12; echo $?)"

# --- the inputs vanished: the reference image of one tile is gone, its
# science jobs end 66 (the job says so), the other tile's are registered
rm "$W/products/20261207/jid1/ref.fits"
check vanished 0 "$rapid" run "${range[@]}" --procdate 20261209
same "vanished: codes" "$(q 'select exitcode, count(*) from jobs where ppid = 15 group by exitcode')" \
  "$(printf '0|6\n66|6')"
expect "vanished: reported with the log" "$(grep -q 'jid [0-9]* (science) ended 66: .*/products/20261209/jid[0-9]*/job.log' <<<"$out"; echo $?)"

# --- registration while the jobs run: they are left alone, not lost
fresh running
FAKE_JOB_SLEEP=1 "$rapid" launch "${range[@]}" --jobs 14 >/dev/null 2>&1 &
pid=$!
for i in $(seq 100); do [ -f "$W/products/20261207/jid1/job.log" ] && break; sleep 0.05; done
check register-running 0 "$rapid" register
expect "running: left alone" "$(grep -q '0 lost, 0 bad manifests, 14 still running' <<<"$err"; echo $?)"
same "running: nothing ended" "$(q 'select count(*) from jobs where status = 1')" "0"
wait "$pid"
check register-after-running 0 "$rapid" register
same "running: then registered" "$(q 'select count(*), sum(exitcode) from jobs where status = 1')" "14|0"

# --- too few prior images: the whole survey launched, no reference
fresh noref
check run-noref 0 "$rapid" run --start 2028-09-01 --end 2028-10-05
same "noref: all 33, nothing run" "$(q 'select ppid, count(*), min(exitcode), max(exitcode), sum(status) from jobs group by ppid')" "15|24|33|33|24"
expect "noref: not run" "$(ls "$W/products" 2>/dev/null | wc -l | grep -q '^0$'; echo $?)"
printf '[launch]\nref_min_inputs = 1\n' >"$W/rapid.ini"
check noref-again 0 "$rapid" run --start 2028-09-01 --end 2028-10-05
same "noref: kept without --retry-failed" "$(q 'select count(*) from jobs where exitcode = 33')" "24"

# --- a reference job fails: its science jobs are not run (71); retried
fresh refail
export FAKE_JOB_EXIT_REF=67 FAKE_JOB_RECORD=$W/runs
check run-refail 0 "$rapid" run "${range[@]}"
same "refail: codes" "$(q 'select ppid, exitcode, count(*) from jobs group by ppid, exitcode')" \
  "$(printf '12|67|2\n15|71|12')"
same "refail: only reference jobs ran" "$(cut -d' ' -f1 "$W/runs" | sort -u)" "12"
expect "refail: science log says why" "$(grep -q 'reference job .* failed: not run' "$W"/products/20261207/jid3/job.log; echo $?)"
expect "refail: reported" "$(grep -q 'ended with a warning (32-63) or failed (14; rapid run --retry-failed' <<<"$out"; echo $?)"
unset FAKE_JOB_EXIT_REF
check run-retry 0 "$rapid" run "${range[@]}" --retry-failed
complete "retry-failed"
unset FAKE_JOB_RECORD

# --- interrupted jobs (70) are run again without --retry-failed: those a
# run registered as 70, and those whose log says 70 before registration
fresh interrupted
check run-interrupted 0 env FAKE_JOB_EXIT=3:70,4:70 "$rapid" run "${range[@]}"
same "interrupted: registered 70" "$(q 'select jid, exitcode from jobs where exitcode <> 0')" \
  "$(printf '3|70\n4|70')"
check run-after-interrupted 0 "$rapid" run "${range[@]}"
complete "interrupted, run again"
fresh interrupted2
check launch-interrupted 0 env FAKE_JOB_EXIT=3:70 "$rapid" launch "${range[@]}"
check run-after-interrupted-launch 0 "$rapid" run "${range[@]}"
complete "interrupted before registration, run again"

# --- one method fails (exit 4): registered, post-processed
fresh method
check run-method 0 env FAKE_JOB_FAIL_METHOD=sfft "$rapid" run "${range[@]}"
same "method: exit 4" "$(q 'select exitcode, count(*) from jobs where ppid = 15 group by exitcode')" "4|12"
same "method: two methods" "$(q 'select count(*), count(distinct method) from diffimages')" "24|2"
same "method: post-processed" "$(q 'select count(*) from jobs where ppid = 17 and exitcode = 0')" "12"

# --- a corrupt manifest, a missing product, a missing log: that job ends
# 81 / 81 / 80 and is reported; the others are registered
fresh broken
check launch-broken 0 env FAKE_JOB_CORRUPT=5 "$rapid" launch "${range[@]}" --jobs 2
rm "$W/products/20261207/jid6/diff_zogy.fits"
rm "$W/products/20261207/jid7/job.log"
check register-broken 0 "$rapid" register
same "broken: codes" "$(q 'select jid, exitcode from jobs where exitcode <> 0 order by jid')" \
  "$(printf '5|81\n6|81\n7|80')"
expect "broken: corrupt reported" "$(grep -q 'job 5 (ppid 15): bad manifest (81): .*jid5/manifest.json: corrupt manifest' <<<"$err"; echo $?)"
expect "broken: missing product reported" "$(grep -q 'job 6 (ppid 15): bad manifest (81): .*product diff missing: .*diff_zogy.fits' <<<"$err"; echo $?)"
expect "broken: missing log reported" "$(grep -q 'job 7 (ppid 15): lost (80)' <<<"$err"; echo $?)"
same "broken: the others registered" "$(q 'select count(distinct rid) from diffimages')" "9"
check register-broken-again 0 "$rapid" register
same "broken: nothing twice" "$(q 'select count(*) from diffimages')" "27"
check status-broken 0 "$rapid" status
expect "broken: failed jobs listed" "$(grep -q 'jid 7 (science) ended 80: .*/jid7/job.log' <<<"$out"; echo $?)"

# --- executor none: configurations and jobs, nothing run; run finishes them
fresh none
check launch-none 0 "$rapid" launch "${range[@]}" --executor none
same "none: started, not ended" "$(q 'select count(*), sum(status) from jobs')" "14|0"
expect "none: nothing run" "$(ls "$W/products" 2>/dev/null | wc -l | grep -q '^0$'; echo $?)"
check run-after-none 0 "$rapid" run "${range[@]}"
complete "after executor none"

fi # main

if [ "$part" != main ]; then
# --- killed at several points (SIGKILL) and run again: nothing lost or
# done twice.  The jobs sleep so that a kill lands while they run.
for delay in 0.1 0.7 1.5; do
  fresh "kill$delay"
  FAKE_JOB_SLEEP=0.2 "$rapid" run "${range[@]}" --jobs 4 >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  sleep 0.3 # the jobs die with the executor (SIGKILL on parent death)
  check "run after kill at ${delay}s" 0 "$rapid" run "${range[@]}" --jobs 4
  complete "run killed at ${delay}s"
done

# registration killed at a few moments: the jobs ran once, then register
# (and register-postproc) is killed and run again, from the same state
# (test_steps kills them after each job in turn)
fresh regkill
check launch-regkill 0 "$rapid" launch "${range[@]}"
cp "$W/rapid.db" "$tmp/ran.db"
for delay in 0 0.01 0.03; do
  cp "$tmp/ran.db" "$W/rapid.db"; rm -f "$W/rapid.db-wal" "$W/rapid.db-shm"
  "$rapid" register >/dev/null 2>&1 &
  pid=$!; sleep "$delay"; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  check "register after kill at ${delay}s" 0 "$rapid" register
  same "register killed at ${delay}s: rows once" \
    "$(q 'select (select count(*) from refimages), (select count(*) from refimimages), (select count(*) from diffimages), (select count(*) from diffimmeta), (select count(*) from jobs where status = 1 and exitcode = 0)')" \
    "2|12|36|36|14"
done
check postproc-regkill 0 "$rapid" postproc
cp "$W/rapid.db" "$tmp/ran.db"
for delay in 0 0.01 0.03; do
  cp "$tmp/ran.db" "$W/rapid.db"; rm -f "$W/rapid.db-wal" "$W/rapid.db-shm"
  "$rapid" register-postproc >/dev/null 2>&1 &
  pid=$!; sleep "$delay"; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  check "register-postproc after kill at ${delay}s" 0 "$rapid" register-postproc
  complete "register-postproc killed at ${delay}s"
done

fi # kill

echo "steps ($part): $n checks, $fail failed"
[ "$fail" = 0 ]
