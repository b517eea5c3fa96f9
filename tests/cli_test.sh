#!/usr/bin/env bash
# Command-line behaviour of `rapid`: exit codes, messages, output.
set -u
rapid=$1
fail=0; n=0
check() { # check NAME WANT_EXIT CMD... ; output in $out, stderr in $err
  local name=$1 want=$2; shift 2
  n=$((n+1))
  out=$("$@" 2>/tmp/cli_test_err.$$); local rc=$?
  err=$(cat /tmp/cli_test_err.$$)
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, wanted $want; stderr: $err"; fail=$((fail+1)); return 1
  fi
  return 0
}
expect() { # expect NAME CONDITION-RESULT
  n=$((n+1))
  if [ "$2" != 0 ]; then echo "FAIL $1"; fail=$((fail+1)); fi
}

check help 0 "$rapid" --help; expect "help lists tile" "$(grep -q '^  tile' <<<"$out"; echo $?)"
check noargs 2 "$rapid"
check unknown 2 "$rapid" frobnicate; expect "unknown names it" "$(grep -q frobnicate <<<"$err"; echo $?)"
check version 0 "$rapid" version; expect "version format" "$(grep -Eq '^rapid [0-9]+\.[0-9]+\.[0-9]+ \(commit [0-9a-z-]+\)$' <<<"$out"; echo $?)"
check version-help 0 "$rapid" version --help

# --- rapid tile
tmp=${RAPID_TEST_TMP:-/tmp}/cli.$$; mkdir -p "$tmp"
check tile-published 0 "$rapid" tile 11.1 -43.8
expect "tile json keys" "$(grep -Eq '^\{"rtid": 5321355, "cra": 11\.067073[0-9]*, "cdec": -43\.80448[0-9]*, "ramin": 11\.02134[0-9]*, "ramax": 11\.11280[0-9]*, "decmin": -43\.85415[0-9]*, "decmax": -43\.75481[0-9]*, "dbid": 493, "nrabins": 3936\}$' <<<"$out"; echo $?)"
check tile-rtid 0 "$rapid" tile --rtid 2
expect "rtid 2" "$(grep -q '"cdec": 89.9086' <<<"$out" && grep -q '"ramin": -22.5,' <<<"$out"; echo $?)"
check tile-neighbors 0 "$rapid" tile --neighbors --rtid 5321355
expect "neighbors listed ascending" "$(grep -q '"neighbors": \[5317411, 5317412, 5321354, 5321356, 5325290, 5325291\]' <<<"$out"; echo $?)"
check tile-neighbors-after 0 "$rapid" tile 11.1 -43.8 --neighbors
expect "option after position" "$(grep -q '"neighbors"' <<<"$out"; echo $?)"
check tile-north-cap 0 "$rapid" tile 0 90
expect "north cap" "$(grep -q '"rtid": 1,' <<<"$out"; echo $?)"
check tile-wrap 0 "$rapid" tile -348.9 -43.8
expect "RA wraps" "$(grep -q '"rtid": 5321355,' <<<"$out"; echo $?)"
check tile-nside 0 "$rapid" tile --nside 1 --rtid 26
expect "nside 1 has 26 tiles" "$(grep -q '"dbid": 1,' <<<"$out"; echo $?)"
check tile-bad-pos 2 "$rapid" tile 400 100
expect "bad RA named" "$(grep -q "'400'" <<<"$err"; echo $?)"
check tile-bad-dec 2 "$rapid" tile 10 100
expect "bad Dec named" "$(grep -q "Dec '100'" <<<"$err"; echo $?)"
check tile-rtid0 2 "$rapid" tile --rtid 0
expect "rtid 0 named" "$(grep -q "rtid '0'" <<<"$err"; echo $?)"
check tile-rtid-big 2 "$rapid" tile --rtid 6291459
check tile-nan 2 "$rapid" tile abc 3
expect "non-number named" "$(grep -q "'abc'" <<<"$err"; echo $?)"
check tile-nan-dec 2 "$rapid" tile 3 nan
check tile-rtid-text 2 "$rapid" tile --rtid 12x
expect "bad rtid named" "$(grep -q "'12x'" <<<"$err"; echo $?)"
check tile-missing 2 "$rapid" tile 10
check tile-unknown-opt 2 "$rapid" tile --frob 1 2
check tile-help 0 "$rapid" tile --help
expect "tile help" "$(grep -q 'usage: rapid tile' <<<"$out"; echo $?)"
expect "data only on stdout" "$( [ -z "$err" ]; echo $?)"
check tile-export 0 "$rapid" tile --nside 4 --export-sqlite "$tmp/t4.db"
expect "export quiet in scripts" "$( [ -z "$err$out" ]; echo $?)"
check tile-export-exists 1 "$rapid" tile --nside 4 --export-sqlite "$tmp/t4.db"
expect "export refuses to overwrite" "$(grep -q "t4.db" <<<"$err"; echo $?)"
rm -rf "$tmp"

rm -f /tmp/cli_test_err.$$
echo "cli: $((n-fail)) passed, $fail failed"
[ $fail -eq 0 ]
