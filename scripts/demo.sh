#!/usr/bin/env bash
# The main job, as far as it exists today: simulate a small Roman survey,
# create the operations database (SQLite), ingest the images and PSFs, and
# build the reference image of the survey's sky tile.  Planned: this grows
# into the four steps (launch, register, post-process, register).
#   scripts/demo.sh PATH/TO/rapid      (RAPID_WORK: where everything goes)
set -euo pipefail
rapid=$(realpath "${1:-build/cli/rapid}")
work=${RAPID_WORK:-$PWD/work}
db="sqlite:$work/rapid.db"
mkdir -p "$work"
say() { printf '\n== %s\n' "$*"; }

say "$("$rapid" version)"
ra=9.6 dec=-44.0
tile=$("$rapid" tile "$ra" "$dec")
rtid=$(sed 's/.*"rtid": \([0-9]*\).*/\1/' <<<"$tile")
echo "sky tile of ($ra, $dec): $tile"

if [ ! -f "$work/sim/.done" ]; then
  say "simulating 6 visits of 3 detectors (1024^2 pixels, H158) over tile $rtid"
  rm -rf "$work/sim"
  "$rapid" sim --out "$work/sim" --seed 1 --size 1024 --scas 3 --epochs 6 \
    --ra "$ra" --dec "$dec"
  touch "$work/sim/.done"
fi

say "operations database $db"
"$rapid" db init --db "$db"
"$rapid" ingest --db "$db" "$work/sim"
"$rapid" ingest-psf --db "$db" "$work/sim/psf"
"$rapid" db status --db "$db"

say "reference image of tile $rtid from the survey's images (those that miss it are named and left out)"
rm -rf "$work/ref"
"$rapid" coadd --rtid "$rtid" --filter H158 --out "$work/ref" --size 1600 \
  "$work"/sim/Roman_TDS_simple_model_*.fits
ls -l "$work/ref"
say "done: outputs in $work"
