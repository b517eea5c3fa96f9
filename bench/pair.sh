# pair.sh - sourced by the subtraction and candidate benchmarks: the
# full-size simulated pair they share, made once per WORKDIR.
#   in:  rapid (the command), work (WORKDIR)
#   out: sim, sci (the first of 25 simulated 4088^2 visits of one detector
#        over one tile), psf (its PSF file), ref (the coadd of the other 24,
#        7000^2, path without .fits), rtid
sim=$work/sim
if [ ! -f "$sim/.done" ]; then
  echo "== simulating 25 epochs of one detector over one tile (4088^2)"
  rm -rf "$sim"
  "$rapid" sim --out "$sim" --seed 5 --size 4088 --scas 1 --epochs 25 --tiles 1 >/dev/null
  touch "$sim/.done"
fi
mapfile -t inputs < <(ls "$sim"/Roman_TDS_simple_model_*.fits | sort -V)
sci=${inputs[0]}
psf=$sim/psf/Roman_WFI_PSF_H158_1.fits
rtid=$("$rapid" tile 9.6 -44.0 | sed 's/.*"rtid": \([0-9]*\).*/\1/')
ref=$work/zogy/ref/rapid_ref_${rtid}_H158
if [ ! -f "$work/zogy/ref/.done" ]; then
  echo "== reference: the coadd of the other $(( ${#inputs[@]} - 1 )) visits (7000^2)"
  rm -rf "$work/zogy/ref" && mkdir -p "$work/zogy"
  "$rapid" coadd --rtid "$rtid" --filter H158 --out "$work/zogy/ref" --threads 2 \
    "${inputs[@]:1}" >/dev/null
  touch "$work/zogy/ref/.done"
fi
