#!/usr/bin/env bash
# The main job, as far as it exists: today the sky tessellation every
# product is filed under.  Later issues grow this into the four steps on a
# simulated survey.
#   scripts/demo.sh PATH/TO/rapid      (RAPID_WORK: where outputs go)
set -euo pipefail
rapid=${1:-build/cli/rapid}
work=${RAPID_WORK:-$PWD/work}
mkdir -p "$work"

echo "== $("$rapid" version)"
echo "== the tile of (RA, Dec) = (11.1, -43.8) and its neighbours"
"$rapid" tile 11.1 -43.8 --neighbors
echo "== the north polar cap, and a tile by id"
"$rapid" tile 0 90
"$rapid" tile --rtid 226
if [ ! -f "$work/roman_tessellation_nside512.db" ]; then
  echo "== exporting all 6,291,458 tiles for tools that use the old SQLite table"
  "$rapid" tile --export-sqlite "$work/roman_tessellation_nside512.db"
fi
if command -v sqlite3 >/dev/null; then
  echo "== the same tile looked up through the exported R*Tree"
  sqlite3 "$work/roman_tessellation_nside512.db" \
    "SELECT s.* FROM vskytiles v JOIN skytiles s USING(rtid)
      WHERE v.ramin <= 11.1 AND v.ramax > 11.1 AND v.decmin <= -43.8 AND v.decmax > -43.8;"
fi
echo "== done: outputs in $work"
