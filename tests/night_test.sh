#!/usr/bin/env bash
# A night end to end with the real jobs: a small simulated survey on
# SQLite, `rapid run` with the local executor (reference job, science jobs
# with every method and their candidates, registration, post-processing,
# its registration), then `rapid run` again, which finds it done, and the
# products checked against the database: each registered once, every
# post-processed file present with the MD5 the database holds.
set -u
rapid=$1
tmp=${RAPID_TEST_TMP:-/tmp}/night.$$
rm -rf "$tmp"; mkdir -p "$tmp"
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
unset RAPID_DB STARTDATETIME ENDDATETIME JOBPROCDATE RAPID_JOB_CMD
. "$(dirname "$0")/checks.sh"
num() { sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" <<<"$2" | head -1; }

w=$tmp/work db=sqlite:$tmp/work/rapid.db
check sim 0 "$rapid" sim --out "$w/sim" --seed 4 --size 512 --tiles 1 --scas 1 --epochs 5
check init 0 "$rapid" db init --db "$db"
check ingest 0 "$rapid" ingest --db "$db" "$w/sim"
check ingest-psf 0 "$rapid" ingest-psf --db "$db" "$w/sim/psf"
# visits on 7, 12, 17, 22, 27 September: the first three make the reference
if check run 0 "$rapid" run --db "$db" --work "$w" --start 2028-09-21 --end 2028-09-30 \
     --procdate 20280921 --json; then
  first=$out
  expect "one reference image ($(num refimages "$out"))" "$([ "$(num refimages "$out")" = 1 ]; echo $?)"
  d=$(num diffimages "$out")
  # two science images, up to three methods each (the kernel fit may lack stars)
  expect "difference images registered ($d)" "$([ "${d:-0}" -ge 4 ] && [ "$d" -le 6 ]; echo $?)"
  expect "candidates passing" "$([ "$(num passing "$out")" -gt 0 ]; echo $?)"
fi
check rerun 0 "$rapid" run --db "$db" --work "$w" --start 2028-09-21 --end 2028-09-30 \
  --procdate 20280921 --json
expect "a second run finds the night done and changes nothing" \
  "$([ "$(num diffimages "$out")" = "$(num diffimages "$first")" ] && \
     grep -q 'launch: 0 jobs started' <<<"$err" && grep -q 'jobs: done' <<<"$err" &&
     ! grep -q 'jobs run' <<<"$err"; echo $?)"
# the database against the files
sqlite3 "$tmp/work/rapid.db" "SELECT count(*), count(DISTINCT rid || '-' || method) FROM diffimages" \
  > "$tmp/q" 2>&1
expect "each difference image once ($(cat "$tmp/q"))" "$(awk -F'|' '{exit !($1 == $2 && $1 > 0)}' "$tmp/q"; echo $?)"
bad=0
while IFS='|' read -r f sum; do
  [ -f "$f" ] && [ "$(md5sum < "$f" | cut -c1-32)" = "$sum" ] || bad=$((bad+1))
done < <(sqlite3 "$tmp/work/rapid.db" "SELECT filename, checksum FROM diffimages UNION ALL SELECT filename, checksum FROM refimages")
expect "post-processed files present with the database's MD5 ($bad bad)" "$([ "$bad" = 0 ]; echo $?)"
check status 0 "$rapid" status --db "$db" --work "$w" --procdate 20280921 --truth "$w/sim"
expect "status: the supernovae line per method" "$(grep -Eq '^  zogy +[0-9]+ of [0-9]+ found' <<<"$out"; echo $?)"

echo "$((n-fail)) of $n checks passed"
[ "$fail" = 0 ]
