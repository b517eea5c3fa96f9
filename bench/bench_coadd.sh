#!/usr/bin/env bash
# Reference-image benchmark (issue 5): 25 full-size simulated inputs of
# 4088^2 into a 7000^2 grid; time and peak memory on one core, scaling with
# the number of inputs and threads, and SWarp on the same inputs.
#   bench/bench_coadd.sh BUILD_DIR [WORKDIR]
# WORKDIR keeps the simulated inputs between runs (they take a while).
set -euo pipefail
build=${1:-build-bench}
rapid=$(realpath "$build/cli/rapid")
work=${2:-${TMPDIR:-/tmp}/rapid-bench-coadd}
mkdir -p "$work"
sim=$work/sim

if [ ! -f "$sim/.done" ]; then
  echo "== simulating 25 epochs of one detector over one tile (4088^2)"
  rm -rf "$sim"
  /usr/bin/time -f "sim: %e s, peak RSS %M KB" \
    "$rapid" sim --out "$sim" --seed 5 --size 4088 --scas 1 --epochs 25 --tiles 1
  touch "$sim/.done"
fi
mapfile -t inputs < <(ls "$sim"/Roman_TDS_simple_model_*.fits | sort)
rtid=$("$rapid" tile 9.6 -44.0 | sed 's/.*"rtid": \([0-9]*\).*/\1/')
echo "== tile $rtid, ${#inputs[@]} inputs"
echo "== the resampling kernel alone, one input, one core"
taskset -c 0 "$(dirname "$rapid")/../bench/bench_resample" "${inputs[0]}" 3

run() { # run NINPUTS THREADS
  local out=$work/ref_$1_$2
  rm -rf "$out"
  /usr/bin/time -f "coadd $1 inputs, $2 thread(s): %e s, peak RSS %M KB" \
    taskset -c 0-$(( $2 - 1 )) "$rapid" coadd --rtid "$rtid" --filter H158 --out "$out" \
    --threads "$2" --max-inputs "$1" "${inputs[@]:0:$1}" >/dev/null
}
run 25 1
run 10 1
run 5 1
run 25 2

echo "== SWarp 2.41 on the same 25 inputs (one thread, 7000^2, no background subtraction)"
echo "   (SWarp does not read SIP distortion terms: its output is misaligned by"
echo "    the distortion, so this compares speed only)"
read -r cra cdec < <("$rapid" tile --rtid "$rtid" | sed 's/.*"cra": \([-0-9.e]*\), "cdec": \([-0-9.e]*\),.*/\1 \2/')
swd=$work/swarp; rm -rf "$swd"; mkdir -p "$swd"
( cd "$swd" && /usr/bin/time -f "swarp 25 inputs, 1 thread: %e s, peak RSS %M KB" \
    SWarp "${inputs[@]/%/[1]}" -c /dev/null -IMAGEOUT_NAME ref.fits -WEIGHTOUT_NAME ref_w.fits \
    -CENTER_TYPE MANUAL -CENTER "$cra,$cdec" -PIXELSCALE_TYPE MANUAL -PIXEL_SCALE 0.11 \
    -IMAGE_SIZE 7000,7000 -COMBINE_TYPE WEIGHTED -SUBTRACT_BACK N -RESAMPLE Y \
    -RESAMPLE_DIR "$swd" -NTHREADS 1 -VERBOSE_TYPE QUIET -WRITE_XML N )
