#!/usr/bin/env bash
# Image-subtraction benchmark (issue 16): a 4088^2 science image against a
# 7000^2 reference.
#   bench/bench_zogy.sh BUILD_DIR [WORKDIR]
# The inputs are bench_coadd.sh's (the same WORKDIR keeps them between
# runs): the first simulated visit is the science image, the reference is
# the coadd of the other 24.  Then
#   1. the pair prepared as `rapid diff` prepares it (bench/zogy_dump: read,
#      resample, backgrounds, gain matching, naive difference, ZOGY; each
#      stage's seconds, one thread), the ZOGY inputs and products written
#      (if rapid_diff_zogy fails, again with the noise taken as white, so
#      that the cross-check and the timing still run: said so);
#   2. bench/zogy_numpy.py, an independent numpy ZOGY (float64), on the same
#      inputs: its time and peak RSS (the local peer) and its agreement with
#      rapid's products;
#   3. the ZOGY stage alone (bench/bench_zogy on those inputs, the pair
#      aligned and matched, as the existing system's figure is): one and two
#      threads, FFTW ESTIMATE and MEASURE plans (wisdom learnt, then
#      reused), best of three, peak RSS; one transform of the padded size
#      and of its neighbours;
#   4. the whole `rapid diff` command, one and two threads, when it exists.
# On a shared machine compare each run's CPU time with its wall time
# (docs/PERFORMANCE.md says how the recorded figures were taken).
set -euo pipefail
build=${1:-build-bench}
rapid=$(realpath "$build/cli/rapid")
bin=$(realpath "$build/bench")
here=$(cd "$(dirname "$0")" && pwd)
work=${2:-${TMPDIR:-/tmp}/rapid-bench-coadd}
z=$work/zogy
mkdir -p "$z"
. "$here/pair.sh"
echo "== science $(basename "$sci"), reference $(basename "$ref").fits"

# Read the files once before each timed run (the VM pages out idle page
# cache: see bench_coadd.sh).
warm() { cat "$@" > /dev/null; }

echo "== 1. the pair prepared, each stage (library calls, one thread)"
mkdir -p "$z/pair"
warm "$sci" "$ref"*.fits
if ! taskset -c 0 "$bin/zogy_dump" "$sci" "$ref.fits" "$psf" "${ref}_psf.fits" "$z/pair"; then
  echo "   rapid_diff_zogy failed (above): again with the noise taken as white"
  taskset -c 0 "$bin/zogy_dump" --white "$sci" "$ref.fits" "$psf" "${ref}_psf.fits" "$z/pair"
fi

echo "== 2. numpy ZOGY (float64, numpy.fft, one thread) on the same inputs, and"
echo "   its agreement with rapid's products (criterion: 1e-3 sigma)"
warm "$z/pair/zogy_in.fits"
taskset -c 0 /usr/bin/python3 "$here/zogy_numpy.py" "$z/pair/zogy_in.fits" \
  "$z/pair/zogy_rapid.fits"

echo "== 3. rapid's ZOGY stage alone on the same inputs (best of 3; peak RSS)"
for t in 1 2; do
  warm "$z/pair/zogy_in.fits"
  taskset -c 0-$(( t - 1 )) "$bin/bench_zogy" --threads "$t" --repeat 3 "$z/pair/zogy_in.fits"
done
rm -f "$z/wisdom"
for t in 1 1 2 2; do   # the first of each learns the wisdom, the second reuses it
  warm "$z/pair/zogy_in.fits"
  taskset -c 0-$(( t - 1 )) "$bin/bench_zogy" --threads "$t" --repeat 3 \
    --measure "$z/wisdom" "$z/pair/zogy_in.fits"
done
echo "   one transform of the padded size and of others, one thread (ESTIMATE, MEASURE)"
sizes=4096,4116,4158,4200
taskset -c 0 "$bin/bench_zogy" --repeat 3 --fft "$sizes"
taskset -c 0 "$bin/bench_zogy" --repeat 3 --measure "$z/wisdom" --fft "$sizes"

echo "== 4. the whole command: rapid diff --method all"
if "$rapid" diff --help >/dev/null 2>&1; then
  for t in 1 2; do
    rm -rf "$z/diff_$t"
    warm "$sci" "$ref"*.fits "$psf"
    rc=0
    /usr/bin/time -f "rapid diff, $t thread(s): %e s (user %U s, system %S s), peak RSS %M KB" \
      taskset -c 0-$(( t - 1 )) "$rapid" diff --sci "$sci" --ref "$ref.fits" \
      --sci-psf "$psf" --method all --threads "$t" --out "$z/diff_$t" \
      > "$z/diff_$t.json" || rc=$?
    echo "exit $rc: $(/usr/bin/python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(json.dumps({k: j.get(k) for k in ("methods", "stages", "match")}))' "$z/diff_$t.json" 2>/dev/null || cat "$z/diff_$t.json")"
  done
else
  echo "rapid diff is not in this build"
fi
