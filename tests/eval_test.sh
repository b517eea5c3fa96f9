#!/usr/bin/env bash
# `rapid eval` end to end on a tiny survey: the pipeline run, sources
# injected into the science jobs' copies, the report files written and
# consistent, the images of the injected jobs gone and their catalogs kept.
set -u
rapid=$1
tmp=${RAPID_TEST_TMP:-/tmp}/eval.$$; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/checks.sh"

check help 0 "$rapid" eval --help
expect "help names the report" "$(grep -q 'eval.json' <<<"$out"; echo $?)"
check bad-method 2 "$rapid" eval --methods zogy,hotpants --work "$tmp/x"
expect "bad method named" "$(grep -q hotpants <<<"$err"; echo $?)"
check too-few-epochs 2 "$rapid" eval --epochs 3 --work "$tmp/x"
check operand 2 "$rapid" eval extra --work "$tmp/x"
expect "nothing made on bad usage" "$([ ! -e "$tmp/x" ]; echo $?)"
check no-sim 1 "$rapid" eval --from-sim "$tmp/nosuchsim" --work "$tmp/y"
expect "a missing simulation named with its file" "$(grep -q "nosuchsim/truth/pointings.fits: no such file" <<<"$err"; echo $?)"

w=$tmp/w
if check run 0 "$rapid" eval --work "$w" --size 256 --tiles 1 --epochs 5 --scas 2 \
     --per-image 40 --min-injections 100 --methods zogy,naive --seed 3; then
  expect "stdout is eval.json" "$(diff <(echo "$out") "$w/eval.json" >/dev/null; echo $?)"
  for k in m_th m80 m20 m5sigma m_ph10 fom fp_per_image n_injected n_recovered n_images; do
    c=$(grep -c "\"$k\":" "$w/eval.json")
    # two methods x three groups
    expect "eval.json has $k six times ($c)" "$([ "$c" = 6 ]; echo $?)"
  done
  expect "groups" "$(grep -q '"field":' "$w/eval.json" && grep -q '"nuclear":' "$w/eval.json"; echo $?)"
  expect "false positives by what lies under them" "$(grep -q '"near_bright_stars":' "$w/eval.json" && grep -q '"on_galaxies":' "$w/eval.json"; echo $?)"
  expect "no kernel-fit entry when not asked" "$(! grep -q '"sfft":' "$w/eval.json"; echo $?)"
  rec=$(grep -m1 '"n_recovered":' "$w/eval.json" | tr -dc 0-9)
  inj=$(grep -m1 '"n_injected":' "$w/eval.json" | tr -dc 0-9)
  expect "injections recovered ($rec of $inj)" "$([ "${rec:-0}" -gt 0 ] && [ "$rec" -le "$inj" ]; echo $?)"
  det=$(grep -m1 '"n_detected":' "$w/eval.json" | tr -dc 0-9)
  expect "detected before the cuts ($det) at least recovered ($rec)" "$([ "${det:-0}" -ge "${rec:-1}" ] && [ "$det" -le "$inj" ]; echo $?)"
  expect "at least the minimum injected ($inj)" "$([ "${inj:-0}" -ge 50 ]; echo $?)"
  expect "eval.csv: header and 6 rows" "$([ "$(wc -l <"$w/eval.csv")" = 7 ] && head -1 "$w/eval.csv" | grep -q '^filter,method,group,m_th,m80,m20,m5sigma,m_ph10,fom,fp_per_image,n_injected,n_recovered,n_images,n_detected,m80_detected$'; echo $?)"
  np=0
  for g in all field nuclear; do for k in completeness fp precision; do
    f=$w/plots/H158_${g}_$k.png
    [ "$(head -c 4 "$f" 2>/dev/null | tail -c 3)" = PNG ] && np=$((np+1))
  done; done
  expect "nine PNG plots ($np)" "$([ "$np" = 9 ]; echo $?)"
  expect "injected images deleted" "$([ -z "$(ls "$w/injected")" ]; echo $?)"
  expect "catalogs kept" "$(ls "$w"/jobs/*/*_zogy_cat.fits >/dev/null 2>&1; echo $?)"
  ninj=$(ls "$w"/jobs/*/injections.fits 2>/dev/null | wc -l); ncat=$(ls "$w"/jobs/*/*_zogy_cat.fits | wc -l)
  expect "each injected job's injections kept ($ninj of $ncat)" "$([ "$ninj" = "$ncat" ] && \
    grep -aq "TTYPE9  = 'found_zogy" "$(ls "$w"/jobs/*/injections.fits | head -1)"; echo $?)"
  expect "difference images deleted" "$(! ls "$w"/jobs/*/*_diff.fits >/dev/null 2>&1; echo $?)"
  # the survey's own supernovae, as `rapid status --truth` counts them
  check status-truth 0 "$rapid" status --db "sqlite:$w/eval.db" --work "$w/pipeline" \
    --procdate "$(date -u +%Y%m%d)" --truth "$w/sim"
  expect "status --truth: a line per method evaluated" \
    "$(grep -Eq '^  zogy +[0-9]+ of [0-9]+ found' <<<"$out" && grep -Eq '^  naive +[0-9]+ of' <<<"$out"; echo $?)"
  check status-truth-json 0 "$rapid" status --db "sqlite:$w/eval.db" --work "$w/pipeline" \
    --procdate "$(date -u +%Y%m%d)" --truth "$w/sim" --truth-mag 24 --json
  expect "status --truth --json: a second object" \
    "$(tail -1 <<<"$out" | grep -q '^{"truth": {"simdir": ".*", "mag_max": 24, "methods": {"zogy": {"images": [0-9]*, "supernovae": [0-9]*, "found": [0-9]*, "passing": [0-9]*}'; echo $?)"
  check status-truth-bad 1 "$rapid" status --db "sqlite:$w/eval.db" --work "$w/pipeline" \
    --procdate "$(date -u +%Y%m%d)" --truth "$tmp/nosuchsim"
  expect "status --truth names the missing file" "$(grep -q nosuchsim <<<"$err"; echo $?)"
  expect "injections never ingested: the database holds only the survey's images" \
    "$(! grep -rq injected "$w/pipeline/jobs"; echo $?)"
fi

echo "$((n-fail)) of $n checks passed"
[ "$fail" = 0 ]
