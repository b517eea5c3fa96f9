# checks.sh - what the shell tests share (sourced after the script sets
# tmp, its scratch directory, if it has one).
#   check NAME WANT_EXIT CMD...   runs CMD: its stdout in $out, its stderr
#                                 in $err; a failure if it exits otherwise
#   expect NAME RESULT            a failure unless RESULT is 0 (e.g.
#                                 "$(test ...; echo $?)")
# $n counts the checks, $fail the failures.
fail=0; n=0
check() {
  local name=$1 want=$2 ef rc; shift 2
  if [ -d "${tmp:-}" ]; then ef=$tmp/.check-stderr; else ef=${TMPDIR:-/tmp}/.check-stderr.$$; fi
  n=$((n+1))
  out=$("$@" 2>"$ef"); rc=$?
  err=$(cat "$ef"); rm -f "$ef"
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, wanted $want; stderr: $err"; fail=$((fail+1)); return 1
  fi
  return 0
}
expect() {
  n=$((n+1))
  if [ "$2" != 0 ]; then echo "FAIL $1"; fail=$((fail+1)); fi
}
