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

echo "== operations database: header ingest of 10,000 images; range and prior-image"
echo "   queries at 100,000 rows; SQLite and a local PostgreSQL (targets: >= 1,000"
echo "   images/s ingest on SQLite, each query < 20 ms)"
pgstate=$tmp/pg-state
trap 'bash scripts/pg-local.sh stop "$pgstate" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
if pgurl=$(bash scripts/pg-local.sh start "$pgstate"); then
  "$build/bench/bench_db" --files 10000 --rows 100000 --pg "$pgurl" --tmp "$tmp" 2>/dev/null
  bash scripts/pg-local.sh stop "$pgstate"
else
  echo "PostgreSQL missing (scripts/install-deps.sh installs it): SQLite only"
  "$build/bench/bench_db" --files 10000 --rows 100000 --tmp "$tmp" 2>/dev/null
fi

echo "== the steps at a night's scale: launch (executor none) and registration of"
echo "   2,069 science jobs over 12 tiles (6 reference jobs), then post-processing"
echo "   launch and registration; SQLite and a local PostgreSQL, one core"
echo "   (target: >= 1,000 jobs/s each; the existing system 1.5 and 4.5 jobs/s)"
pgstate=$tmp/pg-steps
if pgurl=$(bash scripts/pg-local.sh start "$pgstate"); then
  taskset -c 0 "$build/bench/bench_steps" --pg "$pgurl" --tmp "$tmp" || true
  bash scripts/pg-local.sh stop "$pgstate"
else
  echo "PostgreSQL missing (scripts/install-deps.sh installs it): SQLite only"
  taskset -c 0 "$build/bench/bench_steps" --tmp "$tmp" || true
fi

echo "== the Slurm executor: the same night's 2,069 science and 6 reference jobs"
echo "   submitted to a local Slurm (sbatch --array, the ids stored on the rows),"
echo "   then run by it (a one-line job); three runs"
bash bench/bench_slurm.sh "$build" 3

echo "== simulator: one L2 image (scene, PSF field made beforehand), one core"
echo "   (targets: 4088^2 <= 3 s, 512^2 in milliseconds)"
taskset -c 0 "$build/bench/bench_sim" 512 4088 2>/dev/null

echo "== reference images: 25 simulated 4088^2 inputs into 7000^2, 1 and 2 threads,"
echo "   and SWarp on the same inputs (several minutes; target <= 15 s on one core)"
bash bench/bench_coadd.sh "$build" "$tmp/coadd"

echo "== image subtraction: a 4088^2 science image against a 7000^2 reference made"
echo "   from the same simulation; the ZOGY stage against numpy and the existing"
echo "   system's figure (target: >= 10x faster than 35.7 s, <= 1.36 GB)"
bash bench/bench_zogy.sh "$build" "$tmp/coadd"

echo "== candidates: the ZOGY difference of the same pair with 3000 injected sources"
echo "   (a few thousand detections), the whole stage and its PSF fits on 1 and 2"
echo "   threads, then source-extractor on the same image (targets: extraction alone"
echo "   <= source-extractor, the whole stage < 2x it)"
bash bench/bench_candidates.sh "$build" "$tmp/coadd"

echo "== the science job (rapid job): a 4088^2 science image, every method and the"
echo "   candidates, with its 7000^2 reference built in the job from 24 inputs and"
echo "   with it made already; 2 threads (target: <= 33 s, 20x the existing"
echo "   system's 666 s, under 4 GB)"
bash bench/bench_job.sh "$build" "$tmp/coadd"
