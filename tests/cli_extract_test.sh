#!/usr/bin/env bash
# `rapid extract`: exit codes, messages, the FITS and CSV catalogs.
set -u
rapid=$1
tmp=${RAPID_TEST_TMP:-/tmp}/cli-extract.$$; rm -rf "$tmp"; mkdir -p "$tmp"
. "$(dirname "$0")/checks.sh"

"$rapid" sim --out "$tmp/s" --size 256 --scas 1 --epochs 1 --seed 5 >/dev/null || { echo "FAIL sim"; exit 1; }
l2=$(ls "$tmp"/s/Roman_TDS_simple_model_H158_*_1.fits)
psf=$tmp/s/psf/Roman_WFI_PSF_H158_1.fits

check extract-help 0 "$rapid" extract --help
expect "extract help" "$(grep -q 'usage: rapid extract --image' <<<"$out"; echo $?)"
check help-lists-extract 0 "$rapid" --help
expect "rapid --help lists extract" "$(grep -q '^  extract' <<<"$out"; echo $?)"
check extract-fits 0 "$rapid" extract --image "$l2[SCI]" --unc "$l2[ERR]" --psf "$psf" --background 64 --out "$tmp/c.fits"
expect "one JSON line" "$(grep -Eq '^\{"out": ".*/c.fits", "candidates": [1-9][0-9]*, "positive": [0-9]+, "negative": 0, "pass": [0-9]+\}$' <<<"$out"; echo $?)"
expect "quiet" "$( [ -z "$err" ]; echo $?)"
if command -v fitsverify >/dev/null; then
  expect "fitsverify clean, warnings included" "$(fitsverify "$tmp/c.fits" | grep -q 'found 0 warning(s) and 0 error(s)'; echo $?)"
fi
expect "columns lowercase, units" "$(od -An -c -w80 "$tmp/c.fits" | tr -d ' ' | tr -d '\n' | grep -q "TTYPE2='x'" ; echo $?)"
check extract-csv 0 "$rapid" extract --image "$l2[1]" --unc "$l2[2]" --psf "$psf" --background 64 --negative --out "$tmp/c.csv"
head -1 "$tmp/c.csv" >"$tmp/cols"
expect "csv header" "$(grep -q '^id,x,y,ra,dec,flux_aper_2,flux_aper_3,flux_aper_4,flux_aper_6,flux_aper_10,flux_aper_14,fluxerr_aper_2,.*,flux_auto,fluxerr_auto,a,b,theta,elongation,fwhm,isoarea,peak,snr,flags,sign,flux_psf,fluxerr_psf,x_psf,y_psf,xerr_psf,yerr_psf,chi2_psf,npix_psf,edge_dist,snr_aper_3,aper_ratio_3_6,nneg,nbad,sumrat,dmag,satrad,snr_psf,pass,fail_bits$' "$tmp/cols"; echo $?)"
ncsv=$(($(wc -l <"$tmp/c.csv") - 1))
expect "csv rows as counted" "$(grep -q "\"candidates\": $ncsv," <<<"$out"; echo $?)"
expect "negative candidates" "$(awk -F, 'NR>1 && $29==-1 {k++} END {exit !(k>0)}' "$tmp/c.csv"; echo $?)"
# the fits converge, stars of the science image included (their PSF is
# not the file's everywhere): a pure Gauss-Newton step zig-zagged about
# the minimum of a mismatched model until the iterations ran out (25 %)
expect "PSF fits converge" "$(awk -F, 'NR>1 {n++; if (int($28/256)%2) c++} END {exit !(c <= n/100)}' "$tmp/c.csv"; echo $?)"
expect "pass is fail_bits == 0" "$(awk -F, 'NR>1 && (($NF==0) != ($(NF-1)==1)) {bad=1} END {exit bad}' "$tmp/c.csv"; echo $?)"
expect "errors calibrated (ERRCOR3)" "$(grep -aq "ERRCOR3 = " "$tmp/c.fits"; echo $?)"
# saturated stars: the science image's DQ (SATURATED bit) as --saturated
check extract-saturated 0 "$rapid" extract --image "$l2[SCI]" --unc "$l2[ERR]" --psf "$psf" --background 64 --saturated "$l2[DQ]" --out "$tmp/sat.fits"
expect "header says SATMAP T" "$(grep -aq "SATMAP  = 'T" "$tmp/sat.fits" && grep -aq "SATMAP  = 'F" "$tmp/c.fits"; echo $?)"
check saturated-size 1 "$rapid" extract --image "$l2[SCI]" --saturated "$psf" --out "$tmp/y.csv"
expect "saturation map of another size named" "$(grep -q 'saturation map of 65 x 65 pixels' <<<"$err"; echo $?)"
# astropy reads both catalogs without a warning (units included: the
# image's DN is written adu), with the same values
if /usr/bin/python3 -c 'import astropy, numpy' 2>/dev/null; then
  "$rapid" extract --image "$l2[1]" --unc "$l2[2]" --psf "$psf" --background 64 --negative --out "$tmp/c2.fits" >/dev/null
  expect "astropy reads FITS and CSV without warnings" "$(/usr/bin/python3 - "$tmp/c2.fits" "$tmp/c.csv" <<'PY' >/dev/null 2>&1; echo $?
import sys, warnings
warnings.simplefilter("error")
import numpy as np
from astropy.io import fits
from astropy.table import Table
with fits.open(sys.argv[1]) as h:
    h.verify("exception")
t = Table.read(sys.argv[1], hdu="CANDIDATES")
c = Table.read(sys.argv[2], format="ascii.csv")
assert t.colnames == c.colnames and len(t) == len(c) > 0
assert str(t["flux_psf"].unit) == "adu" and str(t["ra"].unit) == "deg"
assert np.allclose(np.asarray(t["flux_aper_3"], float), c["flux_aper_3"], rtol=1e-6, equal_nan=True)
PY
)"
fi
check extract-threads 0 "$rapid" extract --image "$l2[1]" --unc "$l2[2]" --psf "$psf" --background 64 --negative --threads 2 --out "$tmp/t2.csv"
expect "--threads 2: the same catalog" "$(cmp -s "$tmp/c.csv" "$tmp/t2.csv"; echo $?)"
check extract-badthreads 2 "$rapid" extract --image "$l2" --out "$tmp/c.csv" --threads 0
# stricter cuts from an INI file: fewer pass
printf '[cuts]\nsnr_min = 50\n' >"$tmp/strict.ini"
check extract-cuts 0 "$rapid" extract --image "$l2[1]" --unc "$l2[2]" --psf "$psf" --background 64 --cuts "$tmp/strict.ini" --out "$tmp/s.csv"
p0=$(awk -F, 'NR>1 {k+=$(NF-1)} END {print k+0}' "$tmp/c.csv")
p1=$(awk -F, 'NR>1 {k+=$(NF-1)} END {print k+0}' "$tmp/s.csv")
expect "stricter cuts pass fewer ($p1 < $p0)" "$( [ "$p1" -lt "$p0" ]; echo $?)"
# without --psf or --unc: a Gaussian PSF, the rms noise, said in the header
check extract-nopsf 0 "$rapid" extract --image "$l2[SCI]" --background 64 --out "$tmp/g.fits"
expect "header says NOISESRC BKGRMS, PSFSRC GAUSS" "$(grep -aq "NOISESRC= 'BKGRMS" "$tmp/g.fits" && grep -aq "PSFSRC  = 'GAUSS" "$tmp/g.fits"; echo $?)"
# mistakes
check extract-noargs 2 "$rapid" extract
expect "required named" "$(grep -q -- '--image and --out are required' <<<"$err"; echo $?)"
check extract-badout 2 "$rapid" extract --image "$l2" --out "$tmp/c.txt"
expect "bad --out named" "$(grep -q 'c.txt: the name must end in' <<<"$err"; echo $?)"
check extract-badthresh 2 "$rapid" extract --image "$l2" --out "$tmp/c.csv" --thresh -1
expect "bad --thresh named" "$(grep -q -- "--thresh '-1'" <<<"$err"; echo $?)"
check extract-operand 2 "$rapid" extract --image "$l2" --out "$tmp/c.csv" extra
check extract-missing 1 "$rapid" extract --image "$tmp/none.fits" --out "$tmp/x.csv"
expect "missing file named" "$(grep -q 'none.fits: no such file' <<<"$err"; echo $?)"
check extract-nohdu 1 "$rapid" extract --image "$l2[FOO]" --out "$tmp/x.csv"
expect "missing HDU named" "$(grep -q 'FOO.*no such HDU' <<<"$err"; echo $?)"
check extract-size 1 "$rapid" extract --image "$l2[SCI]" --unc "$psf" --out "$tmp/x.csv"
expect "size mismatch named" "$(grep -q 'Roman_WFI_PSF_H158_1.fits: uncertainty of 65 x 65 pixels, the image has 256 x 256' <<<"$err"; echo $?)"
printf '[cuts]\nsnr = 5\n' >"$tmp/bad.ini"
check extract-badini 1 "$rapid" extract --image "$l2[SCI]" --cuts "$tmp/bad.ini" --out "$tmp/x.csv"
expect "bad INI key named" "$(grep -q 'bad.ini: line 2: unknown key snr' <<<"$err"; echo $?)"
check extract-badpsf 1 "$rapid" extract --image "$l2[SCI]" --psf "$l2[DQ]" --out "$tmp/x.csv"
expect "bad PSF named" "$(grep -q 'DQ\]: PSF of 256 x 256 samples: the sides must be equal and odd' <<<"$err"; echo $?)"
expect "nothing written on failure" "$( [ ! -e "$tmp/x.csv" ] && [ -z "$(ls -A "$tmp" | grep '^\.')" ]; echo $?)"

rm -rf "$tmp"
echo "cli_extract: $((n-fail)) passed, $fail failed"
[ $fail -eq 0 ]
