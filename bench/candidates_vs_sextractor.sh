#!/bin/sh
# Compare `rapid extract` with Debian's source-extractor on the same image
# and RMS map: detection on the image itself at the same threshold (2.5
# sigma of the RMS map), filter (Gaussian FWHM 2 px, 5x5), minimum area
# (5), deblending (32, 0.005), background mesh (64, 3x3) and apertures
# (2 3 4 6 10 14 px).
#
#   candidates_vs_sextractor.sh RAPID IMAGE[EXT] RMS[EXT] PSF WORKDIR
#
# SExtractor's isolated detections (no other one within 8 px, FLAGS 0)
# above 10 sigma (FLUX_AUTO / FLUXERR_AUTO, no Poisson term: GAIN 0) are
# matched to rapid's candidates within 0.5 px (windowed positions;
# SExtractor counts pixels from 1, rapid from 0), and the median ratio of
# the aperture fluxes is taken per aperture.  Prints the figures; exits 0
# when >= 98 % are matched and every median ratio is within 1 %, 1 when
# not, 77 when source-extractor is not installed.
set -eu
rapid=$1 image=$2 rms=$3 psf=$4 work=$5
se=$(command -v source-extractor || command -v sex || true)
[ -n "$se" ] || { echo "source-extractor is not installed" >&2; exit 77; }
mkdir -p "$work"
cat >"$work/se.param" <<'PARAMS'
NUMBER
XWIN_IMAGE
YWIN_IMAGE
FLUX_APER(6)
FLUXERR_APER(6)
FLUX_AUTO
FLUXERR_AUTO
FLAGS
PARAMS
"$se" "$image" -c /dev/null -PARAMETERS_NAME "$work/se.param" \
  -CATALOG_TYPE ASCII -CATALOG_NAME "$work/se.txt" \
  -WEIGHT_TYPE MAP_RMS -WEIGHT_IMAGE "$rms" -GAIN 0 -GAIN_KEY RAPID_NONE \
  -DETECT_THRESH 2.5 -ANALYSIS_THRESH 2.5 -DETECT_MINAREA 5 \
  -FILTER Y -FILTER_NAME /usr/share/source-extractor/gauss_2.0_5x5.conv \
  -DEBLEND_NTHRESH 32 -DEBLEND_MINCONT 0.005 -CLEAN Y -CLEAN_PARAM 1.0 \
  -BACK_SIZE 64 -BACK_FILTERSIZE 3 -PHOT_APERTURES 2,3,4,6,10,14 \
  -CHECKIMAGE_TYPE NONE -VERBOSE_TYPE QUIET
"$rapid" extract --image "$image" --unc "$rms" --psf "$psf" --background 64 \
  --thresh 2.5 --minarea 5 --filter-fwhm 2 --deblend-nthresh 32 \
  --deblend-cont 0.005 --out "$work/rapid.csv" >/dev/null
awk -v R="$work/rapid.csv" '
function cell(x, y) { return int(x / 2) "," int(y / 2) }
BEGIN {
  FS = ","
  getline line < R
  nf = split(line, h, ",")
  for (k = 1; k <= nf; k++) col[h[k]] = k
  nr = 0
  while ((getline line < R) > 0) {
    split(line, v, ",")
    nr++; rx[nr] = v[col["x"]]; ry[nr] = v[col["y"]]
    for (a = 1; a <= 6; a++) rap[nr, a] = v[col["flux_aper_" substr("2 3 4 6 1014", 2 * a - 1, 2) + 0]]
    c = cell(rx[nr], ry[nr]); grid[c] = grid[c] " " nr
  }
  FS = " "
}
{ n++; sx[n] = $2 - 1; sy[n] = $3 - 1; for (a = 1; a <= 6; a++) sap[n, a] = $(3 + a)
  sauto[n] = $16; serr[n] = $17; sflag[n] = $18 }
END {
  for (i = 1; i <= n; i++) { c = int(sx[i] / 8) "," int(sy[i] / 8); sg[c] = sg[c] " " i }
  for (i = 1; i <= n; i++) {
    if (sflag[i] != 0 || !(serr[i] > 0) || sauto[i] / serr[i] <= 10) continue
    lonely = 1; cx = int(sx[i] / 8); cy = int(sy[i] / 8)
    for (dx = -1; dx <= 1 && lonely; dx++) for (dy = -1; dy <= 1 && lonely; dy++) {
      m = split(sg[(cx + dx) "," (cy + dy)], ids, " ")
      for (q = 1; q <= m; q++) { j = ids[q]; if (j != i && (sx[j]-sx[i])^2 + (sy[j]-sy[i])^2 < 64) lonely = 0 }
    }
    if (!lonely) continue
    nb++; best = -1; bd = 0.25
    cx = int(sx[i] / 2); cy = int(sy[i] / 2)
    for (dx = -1; dx <= 1; dx++) for (dy = -1; dy <= 1; dy++) {
      m = split(grid[(cx + dx) "," (cy + dy)], ids, " ")
      for (q = 1; q <= m; q++) { j = ids[q]; d = (rx[j]-sx[i])^2 + (ry[j]-sy[i])^2; if (d < bd) { bd = d; best = j } }
    }
    if (best < 0) continue
    nm++
    for (a = 1; a <= 6; a++) if (sap[i, a] > 0) { na[a]++; ratio[a, na[a]] = rap[best, a] / sap[i, a] }
  }
  printf "source-extractor: %d detections, %d isolated above 10 sigma; rapid: %d candidates\n", n, nb, nr
  frac = nb ? nm / nb : 0
  printf "matched within 0.5 px: %d of %d (%.2f %%)\n", nm, nb, 100 * frac
  ok = nb > 0 && frac >= 0.98
  split("2 3 4 6 10 14", diam, " ")
  for (a = 1; a <= 6; a++) {
    m = na[a]
    for (p = 1; p <= m; p++) s[p] = ratio[a, p]
    for (p = 2; p <= m; p++) { t = s[p]; for (q = p - 1; q >= 1 && s[q] > t; q--) s[q + 1] = s[q]; s[q + 1] = t }
    med = m ? (m % 2 ? s[(m + 1) / 2] : 0.5 * (s[m / 2] + s[m / 2 + 1])) : 0
    printf "aperture %2s px: median flux ratio rapid / source-extractor %.4f over %d\n", diam[a], med, m
    if (!(med > 0.99 && med < 1.01)) ok = 0
  }
  exit ok ? 0 : 1
}' "$work/se.txt"
