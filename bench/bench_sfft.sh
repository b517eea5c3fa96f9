#!/usr/bin/env bash
# Kernel-fit benchmark (docs/PERFORMANCE.md, "Image subtraction (rapid
# diff, kernel fit)"): `rapid diff --method sfft` on the subtraction
# benchmark's pair (bench/pair.sh: a 4088^2 simulated visit against the
# 7000^2 coadd of 24 others), kernel orders 0, 1, 2 on one thread and 0, 2
# on two; the stage's seconds and CPU time from the JSON (methods.sfft:
# seconds, cpu_seconds, sec_fit, sec_conv, nstamps), CPU time (user +
# system) and peak RSS of the whole command.
#   bench/bench_sfft.sh BUILD_DIR [WORKDIR] [REPEAT]
set -euo pipefail
build=${1:-build-bench}
rapid=$(realpath "$build/cli/rapid")
here=$(cd "$(dirname "$0")" && pwd)
work=${2:-${TMPDIR:-/tmp}/rapid-bench-coadd}
repeat=${3:-1}
s=$work/sfft
mkdir -p "$s" "$work/zogy"
. "$here/pair.sh"
echo "== science $(basename "$sci"), reference $(basename "$ref").fits"
warm() { cat "$@" > /dev/null; } # the VM pages out idle page cache

for run in $(seq "$repeat"); do
  for ot in "0 1" "1 1" "2 1" "0 2" "2 2"; do
    set -- $ot
    out=$s/o$1_t$2
    rm -rf "$out"
    warm "$sci" "$ref"*.fits "$psf"
    rc=0
    /usr/bin/time -o "$s/time" -f "%e %M %U %S" taskset -c 0-$(( $2 - 1 )) \
      "$rapid" diff --sci "$sci" --ref "$ref.fits" --sci-psf "$psf" \
      --method sfft --order "$1" --threads "$2" --out "$out" \
      > "$out.json" || rc=$?
    /usr/bin/python3 - "$out.json" "$s/time" "$1" "$2" "$rc" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
m = j["methods"]["sfft"]
wall, rss, user, system = open(sys.argv[2]).read().split()
print("order %s, %s thread(s), exit %s: kernel fit %.2f s, CPU %.2f s (fit "
      "%.2f, convolutions %.2f), %d stamps; whole command %s s, CPU %.2f s, "
      "peak RSS %.2f GB"
      % (sys.argv[3], sys.argv[4], sys.argv[5], m["seconds"],
         m.get("cpu_seconds", float("nan")), m["sec_fit"], m["sec_conv"],
         m["nstamps"], wall, float(user) + float(system), int(rss) / 1e6))
PY
  done
done
