#!/usr/bin/env bash
# Reference-image benchmark (issue 5): 25 full-size simulated inputs of
# 4088^2 into a 7000^2 grid; time and peak memory on one core, scaling with
# the number of inputs and threads, SWarp on the same inputs, and SExtractor
# on the coadd against the reference catalog (time and agreement).
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
echo "== the resampling kernel alone, one input, one core (every pixel; then"
echo "   without those the coadd masks, as the coadd resamples it)"
taskset -c 0 "$(dirname "$rapid")/../bench/bench_resample" "${inputs[0]}" 3
taskset -c 0 "$(dirname "$rapid")/../bench/bench_resample" "${inputs[0]}" 3 masked

# Read the inputs once before each timed run.  On the development VM the
# host pages out page cache left idle for a minute (DAMON "pageout",
# /sys/kernel/mm/damon/admin/kdamonds), so without this a run after a
# pause times the disk as well as rapid.
warm() { cat "$@" > /dev/null; }

run() { # run NINPUTS THREADS
  local out=$work/ref_$1_$2
  rm -rf "$out"
  warm "${inputs[@]:0:$1}"
  /usr/bin/time -f "coadd $1 inputs, $2 thread(s): %e s (user %U s, system %S s), peak RSS %M KB" \
    taskset -c 0-$(( $2 - 1 )) "$rapid" coadd --rtid "$rtid" --filter H158 --out "$out" \
    --threads "$2" --max-inputs "$1" "${inputs[@]:0:$1}" >/dev/null
}
# three times: this VM's timings of one binary spread by 10-20 %
run 25 1
run 25 1
run 25 1
run 10 1
run 5 1
run 25 2

echo "== SExtractor on the 25-input coadd, one thread: the reference catalog's settings"
echo "   (threshold 2.5 sigma of the uncertainty map, 5 px, 32 levels / 0.005,"
echo "   Gaussian FWHM 2 px 5x5, 64 px background mesh, the same apertures)"
ref=$work/ref_25_1/rapid_ref_${rtid}_H158
sxd=$work/sextractor; rm -rf "$sxd"; mkdir -p "$sxd"
printf '%s\n' NUMBER X_IMAGE Y_IMAGE XWIN_IMAGE YWIN_IMAGE 'FLUX_APER(6)' \
  FLUX_RADIUS FLAGS > "$sxd/cat.param"
warm "$ref.fits" "${ref}_unc.fits"
/usr/bin/time -f "source-extractor, 1 thread: %e s, peak RSS %M KB" \
  taskset -c 0 source-extractor "$ref.fits" -c /usr/share/source-extractor/default.sex \
  -PARAMETERS_NAME "$sxd/cat.param" -FILTER_NAME /usr/share/source-extractor/gauss_2.0_5x5.conv \
  -DETECT_MINAREA 5 -DETECT_THRESH 2.5 -ANALYSIS_THRESH 2.5 -DEBLEND_NTHRESH 32 \
  -DEBLEND_MINCONT 0.005 -BACK_SIZE 64 -PHOT_APERTURES 2,3,4,6,10,14 \
  -WEIGHT_TYPE MAP_RMS -WEIGHT_IMAGE "${ref}_unc.fits" -CATALOG_NAME "$sxd/sx.cat" \
  -CATALOG_TYPE FITS_1.0 -VERBOSE_TYPE QUIET -NTHREADS 1 -CHECKIMAGE_TYPE NONE
echo "== rapid's catalog alone (CPU times), in strips on one and two threads, against one pass"
"$(dirname "$rapid")/../bench/bench_extract" "$ref.fits" "${ref}_unc.fits" 3 1 | grep -v ' run '
"$(dirname "$rapid")/../bench/bench_extract" "$ref.fits" "${ref}_unc.fits" 3 2 | grep -v ' run ' | head -1
if /usr/bin/python3 -c 'import astropy' 2>/dev/null; then
  /usr/bin/python3 "$(dirname "$0")/catalog_vs_sextractor.py" "${ref}_cat.fits" "$sxd/sx.cat"
fi

echo "== SWarp 2.41 on the same 25 inputs (one thread, 7000^2, no background subtraction)"
echo "   (SWarp does not read SIP distortion terms: its output is misaligned by"
echo "    the distortion, so this compares speed only)"
read -r cra cdec < <("$rapid" tile --rtid "$rtid" | sed 's/.*"cra": \([-0-9.e]*\), "cdec": \([-0-9.e]*\),.*/\1 \2/')
swd=$work/swarp; rm -rf "$swd"; mkdir -p "$swd"
warm "${inputs[@]}"
( cd "$swd" && /usr/bin/time -f "swarp 25 inputs, 1 thread: %e s, peak RSS %M KB" \
    SWarp "${inputs[@]/%/[1]}" -c /dev/null -IMAGEOUT_NAME ref.fits -WEIGHTOUT_NAME ref_w.fits \
    -CENTER_TYPE MANUAL -CENTER "$cra,$cdec" -PIXELSCALE_TYPE MANUAL -PIXEL_SCALE 0.11 \
    -IMAGE_SIZE 7000,7000 -COMBINE_TYPE WEIGHTED -SUBTRACT_BACK N -RESAMPLE Y \
    -RESAMPLE_DIR "$swd" -NTHREADS 1 -VERBOSE_TYPE QUIET -WRITE_XML N )
