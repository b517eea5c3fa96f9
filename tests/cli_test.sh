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

rm -f /tmp/cli_test_err.$$
echo "cli: $((n-fail)) passed, $fail failed"
[ $fail -eq 0 ]
