#!/bin/sh
# The ZOGY cross-check at a small size (CTest "zogy_numpy"): two simulated
# 512^2 visits of the same sky, the second the science, the first the
# reference; rapid's ZOGY products on the prepared pair against
# bench/zogy_numpy.py's (numpy, float64) from the same inputs, with a
# registration error of 0.3 px so that the astrometric term counts; then
# again with the PSF-model error term given (eps_D 0.15, p_D 0.2 px, eps_S
# 0.05, p_S 0.1 px: two visits of one pointing measure none), so that the
# term and its selection of point sources (the pair's galaxies wide enough
# to be left out) are checked too.  Fails when D differs by more than 1e-3
# sigma_D or S_corr by more than 1e-3 anywhere with data (but where the
# selection hangs on a near tie: bench/zogy_numpy.py).  Skipped (77)
# without numpy and astropy.
#   bench/zogy_check.sh RAPID ZOGY_DUMP WORKDIR
set -eu
rapid=$1 dump=$2 work=$3
py=/usr/bin/python3
if ! "$py" -c 'import numpy, astropy' 2>/dev/null; then
  echo "numpy or astropy missing for $py: scripts/install-deps.sh --bench installs them" >&2
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
"$rapid" sim --out "$work/sim" --seed 3 --size 512 --scas 1 --epochs 2 >/dev/null
s=$work/sim
for model in "" "--model 0.15,0.2,0.05,0.1"; do
  # shellcheck disable=SC2086 # $model: an option and its value, or nothing
  "$dump" --ref-l2 --sxy 0.3 $model "$s/Roman_TDS_simple_model_H158_2_1.fits" \
    "$s/Roman_TDS_simple_model_H158_1_1.fits" "$s/psf/Roman_WFI_PSF_H158_1.fits" \
    "$s/psf/Roman_WFI_PSF_H158_1.fits" "$work"
  "$py" "$(dirname "$0")/zogy_numpy.py" "$work/zogy_in.fits" "$work/zogy_rapid.fits" --check 1e-3
done
rm -rf "$work"
