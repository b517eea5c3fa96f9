#!/usr/bin/env bash
# Do two builds of rapid make the same simulation and reference image?
#   tests/same_products.sh RAPID_A RAPID_B [WORKDIR]
# (WORKDIR, kept: where to work; a temporary directory, removed, if none)
# Simulates a small survey (fixed seed) with each binary and requires the
# same files; makes the reference image of its tile from RAPID_A's with
# each binary (twice: on a 700^2 grid, and on a
# 600^2 grid from the five nearest inputs; on one thread, since threads
# add the inputs in whatever order they finish them), and
# requires the five products to be the same byte for byte, but for the
# header cards that say when and by which commit they were made (DATE,
# GITCOMM, RAPIDVER, RAPIDGIT) and the checksums that cover them
# (CHECKSUM, and the date in the comment of DATASUM).  Exit 0
# the same, 1 different (naming the files), 2 bad usage.
set -euo pipefail
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 RAPID_A RAPID_B [WORKDIR]" >&2
  exit 2
fi
a=$(realpath "$1") b=$(realpath "$2")
work=${3:-$(mktemp -d)}
mkdir -p "$work"
[ $# -eq 3 ] || trap 'rm -rf "$work"' EXIT
rm -rf "$work"/sima "$work"/simb "$work"/a[12] "$work"/b[12] # of an earlier run

for bin in a b; do
  "${!bin}" sim --out "$work/sim$bin" --seed 7 --size 512 --scas 2 --epochs 4 >/dev/null
done
rtid=$("$a" tile 9.6 -44.0 | sed 's/.*"rtid": \([0-9]*\).*/\1/')

# The file with the cards above blanked (header cards are 80 bytes at
# multiples of 80: headers and data units are both multiples of 2880).
masked() {
  perl -e 'local $/; my $d = <STDIN>;
    for (my $i = 0; $i + 80 <= length $d; $i += 80) {
      my $k = substr($d, $i, 8);
      substr($d, $i + 8, 72) = " " x 72
        if $k =~ /^(DATE    |GITCOMM |RAPIDVER|RAPIDGIT|CHECKSUM)$/;
      substr($d, $i + 32, 48) = " " x 48 if $k eq "DATASUM ";
    }
    print $d' <"$1"
}

status=0
nsim=0
while IFS= read -r f; do
  nsim=$((nsim + 1))
  if [ ! -f "$work/simb/$f" ] || ! cmp -s <(masked "$work/sima/$f") <(masked "$work/simb/$f"); then
    echo "same_products: simulated $f differs between $a and $b" >&2
    status=1
  fi
done < <(cd "$work/sima" && find . -name '*.fits' | sort)
if [ "$nsim" -lt 10 ]; then
  echo "same_products: $nsim simulated files, expected at least 10" >&2
  status=1
fi
run=0
for opts in "--size 700" "--size 600 --max-inputs 5"; do
  run=$((run + 1))
  for bin in a b; do
    # shellcheck disable=SC2086
    "${!bin}" coadd --rtid "$rtid" --filter H158 --out "$work/$bin$run" $opts \
      "$work"/sima/Roman_TDS_simple_model_*.fits >"$work/$bin$run.json"
  done
  n=0
  for f in "$work/a$run"/*.fits; do
    g="$work/b$run/$(basename "$f")"
    n=$((n + 1))
    if [ ! -f "$g" ] || ! cmp -s <(masked "$f") <(masked "$g"); then
      echo "same_products: $(basename "$f") ($opts) differs between $a and $b" >&2
      status=1
    fi
  done
  if [ "$n" -ne 5 ]; then
    echo "same_products: $n products ($opts), expected 5" >&2
    status=1
  fi
  if ! cmp -s <(sed 's/"dir": "[^"]*"//' "$work/a$run.json") \
              <(sed 's/"dir": "[^"]*"//' "$work/b$run.json"); then
    echo "same_products: the statistics ($opts) differ:" >&2
    cat "$work/a$run.json" "$work/b$run.json" >&2
    status=1
  fi
done
[ $status -eq 0 ] &&
  echo "same_products: the same $nsim simulated files, and five products ($run runs)"
exit $status
