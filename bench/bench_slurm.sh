#!/usr/bin/env bash
# The submission rate of the Slurm executor to a local Slurm cluster
# (scripts/slurm-local.sh, started and stopped here): a night's 2,069
# science jobs and their reference jobs launched (bench_steps' synthetic
# database on SQLite), then submitted by the Slurm executor - its sbatch
# calls and the storing of the Slurm ids on the rows, timed - while Slurm
# starts the first of them; then the jobs left are cancelled.  RUNS times.
# Last, 100 jobs submitted and run to their end, for the rate at which
# the one-node cluster runs jobs.  The job is a one-line script that
# writes the log line of a job that ended 0.
#
#   bench/bench_slurm.sh BUILD_DIR [RUNS]    (RUNS: 3)
#
# Without Slurm, or when the cluster cannot be started, it says so and
# exits 0 (bench/run.sh goes on).
set -u
build=${1:-build-bench}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
PATH=$PATH:/usr/sbin:/usr/local/sbin:/sbin

for p in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
  if ! command -v "$p" >/dev/null; then
    echo "Slurm missing (no $p; scripts/install-deps.sh installs it): skipped"
    exit 0
  fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_slurm.XXXXXX")
state=$tmp/slurm
trap 'bash "$here/scripts/slurm-local.sh" stop "$state" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
if ! env=$(bash "$here/scripts/slurm-local.sh" start "$state" 2>"$tmp/start.err"); then
  echo "the local Slurm could not be started: skipped"
  sed 's/^/  /' "$tmp/start.err" | tail -5
  exit 0
fi
eval "$env"
printf '#!/bin/sh\necho "terminating_exitcode = 0"\n' >"$tmp/job.sh"
chmod +x "$tmp/job.sh"
echo "cluster: $(sinfo -h -N -o '%N, %c CPUs, %m MB'), $(sbatch --version)"
status=0
drain() { # cancel what is left, wait until the queue is empty
  local ids
  ids=$(squeue -h -o %A)
  # shellcheck disable=SC2086
  [ -n "$ids" ] && scancel $ids
  for _ in $(seq 1 300); do
    [ -z "$(squeue -h -o %A)" ] && return
    sleep 0.2
  done
}
for i in $(seq 1 "$runs"); do
  echo "run $i:"
  taskset -c 0 "$build/bench/bench_steps" --slurm "$tmp/job.sh" --tmp "$tmp" || status=1
  drain
done
echo "100 jobs run to their end (+ their reference jobs):"
taskset -c 0 "$build/bench/bench_steps" --jobs 100 --slurm "$tmp/job.sh" --slurm-wait --tmp "$tmp" || status=1
exit $status
