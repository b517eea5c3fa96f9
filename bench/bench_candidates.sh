#!/usr/bin/env bash
# Candidate-stage benchmark (issue 18): a full-size ZOGY difference image
# with a few thousand detections.
#   bench/bench_candidates.sh BUILD_DIR [WORKDIR]
# The pair is bench_zogy.sh's (bench/pair.sh; the same WORKDIR keeps it):
# 3000 point sources of H158 21-25 mag are injected into the science image
# (bench/inject_l2), `rapid diff --method zogy` subtracts the reference, and
# on its difference D and uncertainty map
#   1. bench/bench_candidates: the whole stage (detection on D itself,
#      measurement, PSF fits with P_D, vetting) on 1 and 2 threads and the
#      PSF fits alone, best of three;
#   2. source-extractor on the same D and map (the same threshold, filter,
#      minimum area, apertures and background mesh; no PSF fitting), three
#      times; then on -D, since the candidate stage detects both signs
#      (one pass of source-extractor does half of its detection work).
# Targets: extraction alone (whole - fits) no slower than source-extractor,
# the whole stage under twice its time.
set -euo pipefail
build=${1:-build-bench}
rapid=$(realpath "$build/cli/rapid")
bin=$(realpath "$build/bench")
here=$(cd "$(dirname "$0")" && pwd)
work=${2:-${TMPDIR:-/tmp}/rapid-bench-coadd}
. "$here/pair.sh"
c=$work/cand
rm -rf "$c" && mkdir -p "$c"

echo "== 3000 sources injected into $(basename "$sci"); rapid diff --method zogy"
"$bin/inject_l2" "$sci" "$c/sci.fits" "$c/truth.fits" 3000 21 25 7 >/dev/null
"$rapid" diff --sci "$c/sci.fits" --sci-psf "$psf" --ref "$ref.fits" \
  --method zogy --threads 2 --out "$c/d" >/dev/null
d=$c/d/sci_zogy_diff.fits u=$c/d/sci_zogy_unc.fits p=$c/d/sci_zogy_psf.fits

echo "== 1. rapid's candidate stage on D (best of 3)"
cat "$d" "$u" >/dev/null
OPENBLAS_NUM_THREADS=1 taskset -c 0-1 "$bin/bench_candidates" "$d[DIFF]" "$u[UNC]" "$p" 64

echo "== 2. source-extractor on the same D and map (one thread), then on -D"
/usr/bin/python3 -c 'import sys
from astropy.io import fits
h = fits.open(sys.argv[1])
fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(-h["DIFF"].data, name="DIFF")]).writeto(
    sys.argv[2], overwrite=True)' "$d" "$c/negd.fits"
printf 'NUMBER\nXWIN_IMAGE\nYWIN_IMAGE\nFLUX_APER(6)\nFLUXERR_APER(6)\nFLUX_AUTO\nFLAGS\n' >"$c/se.param"
for img in "$d[1]" "$d[1]" "$d[1]" "$c/negd.fits[1]" "$c/negd.fits[1]" "$c/negd.fits[1]"; do
  case $img in *negd*) sign=-D;; *) sign=D;; esac
  /usr/bin/time -f "source-extractor on $sign: %e s (user %U s), peak RSS %M KB" \
    taskset -c 0 source-extractor "$img" -c /dev/null \
    -PARAMETERS_NAME "$c/se.param" -CATALOG_TYPE FITS_1.0 -CATALOG_NAME "$c/se.fits" \
    -WEIGHT_TYPE MAP_RMS -WEIGHT_IMAGE "$u[1]" -DETECT_THRESH 2.5 -DETECT_MINAREA 5 \
    -FILTER_NAME /usr/share/source-extractor/gauss_2.0_5x5.conv \
    -PHOT_APERTURES 2,3,4,6,10,14 -BACK_SIZE 64 -VERBOSE_TYPE QUIET 2>&1 | tail -1
done
/usr/bin/python3 -c 'import sys
from astropy.io import fits
print("source-extractor: %d detections on -D" % len(fits.open(sys.argv[1])["OBJECTS"].data))' \
  "$c/se.fits" 2>/dev/null || true
