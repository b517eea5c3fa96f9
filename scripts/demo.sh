#!/usr/bin/env bash
# The demo of `make demo`: simulate a small Roman survey (two sky tiles,
# six visits of two detectors, 1024^2 pixels, H158, supernovae 50 times as
# frequent as in nature so that a small survey shows some), create the
# operations database (SQLite), ingest the images and PSFs, and run a night
# with `rapid run` on this machine: the first three visits make each tile's
# reference image (one reference job per tile), the last three are
# subtracted by every method, their candidates found, measured, vetted and
# registered, then post-processed.  Ends with what was found: the summary,
# and how many of the simulator's supernovae the passing candidates hold.
#   scripts/demo.sh PATH/TO/rapid      (RAPID_WORK: where everything goes)
set -euo pipefail
rapid=$(realpath "${1:-build/cli/rapid}")
work=${RAPID_WORK:-$PWD/work}
db="sqlite:$work/rapid.db"
mkdir -p "$work"
say() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)

say "$("$rapid" version)"
if [ ! -f "$work/sim/.done" ]; then
  say "simulating 2 tiles x 6 visits x 2 detectors (1024^2 pixels, H158)"
  rm -rf "$work/sim"
  "$rapid" sim --out "$work/sim" --seed 1 --size 1024 --tiles 2 --scas 2 --epochs 6 \
    --sn-rate 50
  touch "$work/sim/.done"
fi

say "operations database $db"
"$rapid" db init --db "$db"
"$rapid" ingest --db "$db" "$work/sim"
"$rapid" ingest-psf --db "$db" "$work/sim/psf"

# visits every 5 days from 2028-09-07: the first three (7, 12, 17
# September) make the references, the night covers the last three
say "rapid run: the four steps over 2028-09-21 .. 2028-10-08"
"$rapid" run --db "$db" --work "$work" --start 2028-09-21 --end 2028-10-08 \
  --procdate 20280921

say "what was found"
"$rapid" status --db "$db" --work "$work" --procdate 20280921 --truth "$work/sim"
say "done in $(( $(date +%s) - t0 )) s: products in $work/products, logs beside them"
