#!/bin/bash
# candidates_pair.sh - passing false positives and transients on a small
# simulated pair (docs/candidates.md, "On simulated pairs"): a 1024^2 H158
# detector without supernovae, variables, cosmic rays, hot pixels, defects
# or persistence (seed 21), reference the coadd of visits 1-5, science
# visit 6, and the same with 400 point sources of H 21-26 injected; every
# difference method; `rapid extract --negative` (ZOGY: detection on S_corr,
# P_D; kernel fit: the cross-convolved difference and its PSF; naive: the
# science PSF); bench/candidates_vs_truth counts.  Then the same pair
# simulated with cosmic rays, hot pixels, defects and persistence on
# (case "dirty": still no supernovae or variables), its own reference:
# every passing candidate there is false.
#
#   [SEED=21] [CUTS=FILE.ini] bench/candidates_pair.sh RAPID BENCHBIN WORKDIR
#
# SEED: the simulation's seed (21; the documented figures also use 22-24);
# CUTS: a cuts INI file given to `rapid extract --cuts` (default: the
# built-in cuts).
# RAPID: the rapid command; BENCHBIN: the build's bench/ directory
# (inject_l2, candidates_vs_truth); WORKDIR: made once and reused (the
# simulation, reference and differences); the catalogs are redone.
set -euo pipefail
rapid=$1 bin=$2 work=$3 seed=${SEED-21}
cuts=()
[ -n "${CUTS-}" ] && cuts=(--cuts "$CUTS")
mkdir -p "$work"
sim=$work/sim
if [ ! -f "$sim/.done" ]; then
  "$rapid" sim --out "$sim" --force --seed "$seed" --size 1024 --scas 1 --epochs 6 \
    --without supernovae,variables,cosmic-rays,hot-pixels,defects,persistence >/dev/null
  touch "$sim/.done"
fi
mapfile -t inputs < <(ls "$sim"/Roman_TDS_simple_model_H158_*_1.fits | sort -V)
sci=${inputs[5]}
rtid=$("$rapid" tile 9.6 -44.0 | sed 's/.*"rtid": \([0-9]*\).*/\1/')
ref=$work/ref/rapid_ref_${rtid}_H158
if [ ! -f "$work/ref/.done" ]; then
  "$rapid" coadd --rtid "$rtid" --filter H158 --size 2800 --out "$work/ref" \
    "${inputs[@]:0:5}" >/dev/null
  touch "$work/ref/.done"
fi
refs=""
for f in "${inputs[@]:0:5}"; do refs="$refs$(basename "$f"),"; done
base=$(basename "$sci" .fits)
if [ ! -f "$work/inj/.done" ]; then
  mkdir -p "$work/inj/psf"
  cp "$sim"/psf/* "$work/inj/psf/"
  "$bin/inject_l2" "$sci" "$work/inj/$base.fits" "$work/inj/truth.fits" 400 21 26 7 >/dev/null
  touch "$work/inj/.done"
fi
simd=$work/sim_dirty
if [ ! -f "$simd/.done" ]; then
  "$rapid" sim --out "$simd" --force --seed "$seed" --size 1024 --scas 1 --epochs 6 \
    --without supernovae,variables >/dev/null
  touch "$simd/.done"
fi
mapfile -t dinputs < <(ls "$simd"/Roman_TDS_simple_model_H158_*_1.fits | sort -V)
if [ ! -f "$work/ref_dirty/.done" ]; then
  "$rapid" coadd --rtid "$rtid" --filter H158 --size 2800 --out "$work/ref_dirty" \
    "${dinputs[@]:0:5}" >/dev/null
  touch "$work/ref_dirty/.done"
fi
for case in plain inj dirty; do
  r=$ref
  if [ $case = plain ]; then s=$sci truth=$sim/truth/transients.fits
  elif [ $case = inj ]; then s=$work/inj/$base.fits truth=$work/inj/truth.fits
  else s=${dinputs[5]} truth=$simd/truth/transients.fits r=$work/ref_dirty/rapid_ref_${rtid}_H158; fi
  d=$work/diff_$case
  if [ ! -f "$d/.done" ]; then
    "$rapid" diff --sci "$s" --ref "$r.fits" --out "$d" --method all >/dev/null
    touch "$d/.done"
  fi
  for m in zogy sfft naive; do
    p=$d/${base}_$m
    case $m in
      zogy) opt=(--unc "${p}_unc.fits" --detect "${p}_scorr.fits" --psf "${p}_psf.fits") ;;
      sfft) opt=(--unc "${p}_unc.fits" --detect "${p}_cconv.fits" --psf "${p}_psf.fits") ;;
      naive) opt=(--unc "${p}_unc.fits" --psf "$sim/psf/Roman_WFI_PSF_H158_1.fits") ;;
    esac
    "$rapid" extract --image "${p}_diff.fits" "${opt[@]}" --negative \
      ${SATURATED-"--saturated=$s[DQ]"} "${cuts[@]}" --out "$work/cat_${case}_$m.fits" >/dev/null
    unc=${p}_unc.fits psf=${p}_psf.fits
    [ $m = naive ] && psf=$sim/psf/Roman_WFI_PSF_H158_1.fits
    echo "== $case $m"
    "$bin/candidates_vs_truth" "$truth" "$base.fits" "$refs" "$unc" "$psf" \
      "$work/cat_${case}_$m.fits"
  done
done
