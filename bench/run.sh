#!/usr/bin/env bash
# Run the benchmarks on an optimised build and print the figures in the form
# docs/PERFORMANCE.md records them (machine, date, command, figure).
#   bench/run.sh BUILD_DIR
set -euo pipefail
build=${1:-build-bench}
rapid=$build/cli/rapid
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
echo "machine: $cpu, $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB; $(date -u +%F)"

echo "== tessellation lookups, one core (target >= 10 M/s)"
taskset -c 0 "$build/bench/bench_tile" 20000000 2>/dev/null

echo "== tessellation export to SQLite, NSIDE 512 (target < 60 s)"
/usr/bin/time -f "export %e s, peak RSS %M KB" "$rapid" tile --export-sqlite "$tmp/tiles.db" 2>&1 | tail -1

echo "== WCS against astropy (independent), 41x41 grid over a 4088^2 detector"
if /usr/bin/python3 -c 'import astropy' 2>/dev/null; then
  /usr/bin/python3 bench/wcs_vs_astropy.py "$build"
else
  echo "astropy missing: scripts/install-deps.sh --bench installs it"
fi
