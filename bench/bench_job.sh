#!/usr/bin/env bash
# Science-job benchmark (issue 19): one full-size science job (a 4088^2
# science image; every difference method; candidates of each), run as the
# pipeline runs it (`rapid job CONFIG`), twice:
#   1. with its reference image built in the job from the other 24 visits
#      of the subtraction benchmark's survey (7000^2), and
#   2. with that reference already made (source = existing),
# on 2 threads, with each stage's seconds from the job's manifest and the
# peak RSS of the whole job.  The existing system (its recorded figure, 4
# vCPU): 666 s per job with a reference build and both methods.
# Target: 20x faster (33 s) on 2 cores, under 4 GB.  Each case is run
# REPEATS times (1), alternating; wall clock and CPU time (user + system)
# of each run; each stage's wall clock and CPU time (all threads).  The
# jobs run in a work directory as the pipeline's do (products under
# WORK/products/<procdate>/jid<jid>), so they share WORK/fftw.wisdom: the
# first job on a machine learns it (untimed here, kept between runs of
# this script), every later one loads it.
#   [REPEATS=N] bench/bench_job.sh BUILD_DIR [WORKDIR]
set -euo pipefail
build=${1:-build-bench}
rapid=$(realpath "$build/cli/rapid")
here=$(cd "$(dirname "$0")" && pwd)
work=${2:-${TMPDIR:-/tmp}/rapid-bench-coadd}
. "$here/pair.sh"
j=$work/job
procdate=20280907
rm -rf "$j/jobs" "$j/products" && mkdir -p "$j/jobs"
fid=2   # H158

config() { # config JID SOURCE
  local jid=$1 src=$2 k=0
  {
    printf '[job]\njid = %s\nppid = 15\nprocdate = %s\nout = %s/products/%s/jid%s\nthreads = 2\n\n' \
      "$jid" "$procdate" "$j" "$procdate" "$jid"
    printf '[science]\nrid = 1\nexpid = 1\nsca = 1\nfid = %s\nfilter = H158\nfield = %s\nimage = %s\npsf = %s\n\n' \
      "$fid" "$rtid" "$sci" "$psf"
    printf '[reference]\n'
    if [ "$src" = build ]; then
      printf 'source = build\nfield = %s\nfilter = H158\nfid = %s\nsize = 7000\nninputs = %d\n' \
        "$rtid" "$fid" $(( ${#inputs[@]} - 1 ))
      for f in "${inputs[@]:1}"; do
        k=$((k + 1))
        printf 'input.%d.rid = %d\ninput.%d.image = %s\ninput.%d.psf = %s\n' "$k" $((k + 1)) "$k" "$f" "$k" "$psf"
      done
    else
      printf 'source = existing\nrfid = 1\nimage = %s.fits\n' "$ref"
    fi
  } > "$j/jobs/jid$jid.ini"
}

run() { # run JID WHAT
  local jid=$1 what=$2 rc=0
  rm -rf "$j/products/$procdate/jid$jid"
  cat "$sci" "$ref"*.fits > /dev/null
  /usr/bin/time -f "%e %U %S %M" -o "$j/time$jid" "$rapid" job "$j/jobs/jid$jid.ini" \
    2> "$j/stderr$jid" || rc=$?
  read -r wall user sys rss < "$j/time$jid"
  echo "== $what: exit $rc, $wall s (CPU $(echo "$user + $sys" | bc) s: user $user, system $sys), peak RSS $((rss / 1024)) MB"
  /usr/bin/python3 - "$j/products/$procdate/jid$jid/manifest.json" <<'PY' || true
import json, sys
m = json.load(open(sys.argv[1]))
print("   stages: " + ", ".join("%s %.1f s" % (s["name"], s["seconds"]) for s in m["stages"]))
print("   stages' CPU: " + ", ".join("%s %.1f s" % (s["name"], s.get("cpu_seconds", 0)) for s in m["stages"]))
print("   methods: " + ", ".join("%s %s" % (d["method"], d["status"]) for d in m["diffs"]))
PY
}

echo "== science $(basename "$sci"); reference $(basename "$ref").fits; 2 threads"
config 1 build
config 2 existing
if [ ! -s "$j/fftw.wisdom" ]; then
  echo "== learning FFTW's wisdom for this machine (the first job's planning; not timed)"
  "$rapid" job "$j/jobs/jid2.ini" 2> "$j/stderr-wisdom" > /dev/null
  rm -rf "$j/products"
fi
for r in $(seq "${REPEATS:-1}"); do
  run 1 "1. the reference built in the job ($(( ${#inputs[@]} - 1 )) inputs), every method"
  run 2 "2. an existing reference, every method"
done
