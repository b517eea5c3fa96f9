#!/bin/sh
# The peer check of `rapid extract` at a small size: a simulated 512^2 H158
# image and its ERR map through rapid and Debian's source-extractor with
# the same settings (bench/candidates_vs_sextractor.sh says which and what
# passes).  Skipped (77) without source-extractor.
set -eu
rapid=$1 src=$2
tmp=${RAPID_TEST_TMP:-/tmp}/extract-vs-se.$$
rm -rf "$tmp"; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
"$rapid" sim --out "$tmp/s" --size 512 --scas 1 --epochs 1 --seed 5 >/dev/null
l2=$(ls "$tmp"/s/Roman_TDS_simple_model_H158_*_1.fits)
"$src/bench/candidates_vs_sextractor.sh" "$rapid" "$l2[1]" "$l2[2]" \
  "$tmp/s/psf/Roman_WFI_PSF_H158_1.fits" "$tmp/cmp"
