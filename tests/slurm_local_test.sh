#!/usr/bin/env bash
# scripts/slurm-local.sh and what the pipeline reads from the cluster it
# starts: job arrays, dependencies, and the end state of every kind of job
# (completed, failed, cancelled, killed for memory, node failure, time
# limit), in squeue while a job is queued or running and afterwards in
# `scontrol show job` and the job-completion file.
#
#   tests/slurm_local_test.sh SCRIPT jobs      everything but the time limit
#   tests/slurm_local_test.sh SCRIPT timeout   a job killed by its --time
#
# The time limit has a test of its own because it takes 60-90 s: Slurm's
# limits are whole minutes and slurmctld looks at them every 30 s.  Each
# test starts its own cluster in a private directory (so the two may run
# at once) and stops it on every exit.  Without Slurm installed the test is
# skipped (exit 77), except in CI (CI=true), where that is a failure.
set -u
script=$1
part=${2:-jobs}
PATH=$PATH:/usr/sbin:/usr/local/sbin:/sbin

for p in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
  if ! command -v "$p" >/dev/null; then
    echo "Slurm is not installed (no $p): scripts/install-deps.sh installs slurm-wlm and munge" >&2
    [ "${CI:-}" = true ] && exit 1
    exit 77
  fi
done

base=${RAPID_TEST_TMP:-${TMPDIR:-/tmp}}
mkdir -p "$base"
tmp=$(mktemp -d "$base/slurm-$part.XXXXXX")
state=$tmp/state
work=$tmp/work
# A second cluster, in a directory too deep for Unix sockets (108 bytes).
deep=$tmp/$(printf 'd%.0s' $(seq 1 100))/state
mkdir -p "$work"
cleanup() {
  "$script" stop "$state" || echo "FAIL slurm-local.sh stop"
  [ -d "$deep" ] && { "$script" stop "$deep" || echo "FAIL slurm-local.sh stop (deep)"; }
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

. "$(dirname "$0")/checks.sh"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# The state Slurm reports for a job it still remembers (squeue -t all and
# scontrol keep a finished job for MinJobAge seconds).
ctl_state() { scontrol show job -o "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1; }
ctl_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
# The state in the job-completion file, written once per ending of a job;
# array tasks have a job id of their own there, and ArrayJobId/ArrayTaskId.
comp_state() { grep "^JobId=$1 " "$jobcomp" 2>/dev/null | tail -1 | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
queued() { # still pending, running or completing
  [ -n "$(squeue -h -j "$1" -t PD,R,CG,S,CF -o %i 2>/dev/null)" ]
}
wait_gone() { # JOBID SECONDS
  local i
  for i in $(seq 1 $(( $2 * 5 ))); do
    queued "$1" || return 0
    sleep 0.2
  done
  return 1
}
wait_state() { # JOBID STATE SECONDS
  local i
  for i in $(seq 1 $(( $3 * 5 ))); do
    [ "$(squeue -h -j "$1" -o %T 2>/dev/null)" = "$2" ] && return 0
    sleep 0.2
  done
  return 1
}
alive() { # PID: running, not a zombie waiting to be reaped
  [ -n "$1" ] && [ -d "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

# --- start, and start again ---------------------------------------------
t0=$(now)
out=$("$script" start "$state") || { echo "FAIL slurm-local.sh start"; exit 1; }
echo "cluster up in $(secs "$t0" "$(now)") s"
expect "start prints one export line" "$(grep -qx "export SLURM_CONF=$state/slurm.conf" <<<"$out"; echo $?)"
eval "$out"
node=$(sinfo -h -N -o %N | head -1)
expect "node idle after start" "$( [ "$(sinfo -h -N -o %T)" = idle ]; echo $?)"
ctld=$(cat "$state/run/slurmctld.pid")
again=$("$script" start "$state")
expect "start again reuses the cluster" "$( [ "$again" = "$out" ] && [ "$(cat "$state/run/slurmctld.pid")" = "$ctld" ]; echo $?)"
expect "env prints the line again" "$( [ "$("$script" env "$state")" = "$out" ]; echo $?)"
jobcomp=$(scontrol show config | sed -n 's/^JobCompLoc *= *//p')
expect "job completion file under STATE" "$( [ "$jobcomp" = "$state/jobcomp.txt" ]; echo $?)"
cd "$work" || exit 1

if [ "$part" = timeout ]; then
  t1=$(now)
  t=$(sbatch --parsable --time=1 -o "$work/t.log" --wrap 'sleep 600')
  wait_state "$t" RUNNING 30
  expect "time-limited job running" "$( [ "$(squeue -h -j "$t" -o %T)" = RUNNING ]; echo $?)"
  expect "its limit is one minute" "$( [ "$(squeue -h -j "$t" -o %l)" = 1:00 ]; echo $?)"
  # Meanwhile, a second cluster beside the first, in a deep directory.
  out2=$("$script" start "$deep")
  expect "second cluster started" "$(grep -qx "export SLURM_CONF=$deep/slurm.conf" <<<"$out2"; echo $?)"
  short=$(sed -n 's/^SHORTDIR=//p' "$deep/cluster" 2>/dev/null)
  expect "its sockets in a short directory" "$( [ -n "$short" ] && [ -S "$short/munge.socket" ]; echo $?)"
  expect "its own ports" "$( [ "$(grep Port= "$deep/slurm.conf")" != "$(grep Port= "$SLURM_CONF")" ]; echo $?)"
  expect "a job runs there" "$( (eval "$out2"
    j=$(sbatch --parsable -o /dev/null --wrap true) && wait_gone "$j" 30 && [ "$(ctl_state "$j")" = COMPLETED ]); echo $?)"
  "$script" stop "$deep"
  expect "second cluster stopped, its short directory gone" "$( [ ! -e "$deep" ] && [ ! -e "$short" ]; echo $?)"
  expect "the first cluster still runs its job" "$( [ "$(squeue -h -j "$t" -o %T)" = RUNNING ]; echo $?)"
  wait_gone "$t" 150
  echo "time limit of 1 min enforced after $(secs "$t1" "$(now)") s"
  expect "TIMEOUT in scontrol" "$( [ "$(ctl_state "$t")" = TIMEOUT ]; echo $?)"
  expect "TIMEOUT in squeue -t all" "$( [ "$(squeue -h -t all -j "$t" -o %T)" = TIMEOUT ]; echo $?)"
  expect "TIMEOUT in the job completion file" "$( [ "$(comp_state "$t")" = TIMEOUT ]; echo $?)"
  expect "the job's log says why" "$(grep -q 'DUE TO TIME LIMIT' "$work/t.log"; echo $?)"
else
  # --- an array, and a job that waits for all of it ---------------------
  cat >task.sh <<'EOF'
#!/bin/sh
sleep 1
echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $(date +%s.%N)" >"task-$SLURM_ARRAY_TASK_ID.out"
EOF
  cat >after.sh <<'EOF'
#!/bin/sh
{ date +%s.%N; ls task-*.out | wc -l; } >after.out
EOF
  t1=$(now)
  a=$(sbatch --parsable --array=0-3 -o "$work/a-%A_%a.log" task.sh)
  b=$(sbatch --parsable --dependency="afterok:$a" -o "$work/b.log" after.sh)
  expect "array job id" "$( [[ "$a" =~ ^[0-9]+$ ]]; echo $?)"
  expect "dependent job waits (Dependency)" "$( [ "$(squeue -h -j "$b" -o '%T %r')" = "PENDING Dependency" ]; echo $?)"
  expect "array queued as 4 tasks" "$( [ "$(squeue -h -r -j "$a" -o %K | sort | tr '\n' ' ')" = "0 1 2 3 " ]; echo $?)"
  wait_gone "$b" 60
  echo "array of 4 and its dependent job done in $(secs "$t1" "$(now)") s"
  for i in 0 1 2 3; do
    expect "task $i wrote its file" "$(grep -q "^$a $i " "task-$i.out"; echo $?)"
    expect "task $i COMPLETED in the job completion file" \
      "$(grep "ArrayJobId=$a ArrayTaskId=$i " "$jobcomp" | grep -q 'JobState=COMPLETED'; echo $?)"
  done
  last=$(cat task-*.out 2>/dev/null | awk '{ print $3 }' | sort -n | tail -1)
  expect "dependent job ran after every task" \
    "$(awk -v l="${last:-9e99}" 'NR == 1 { exit !($1 > l) } NR == 2 { exit !($1 == 4) }' after.out 2>/dev/null; echo $?)"
  expect "dependent job COMPLETED (scontrol)" "$( [ "$(ctl_state "$b")" = COMPLETED ]; echo $?)"
  expect "dependent job COMPLETED (file)" "$( [ "$(comp_state "$b")" = COMPLETED ]; echo $?)"
  expect "dependent job COMPLETED (squeue -t all)" "$( [ "$(squeue -h -t all -j "$b" -o %T)" = COMPLETED ]; echo $?)"

  # --- scancel: a running job and a pending one --------------------------
  c=$(sbatch --parsable -o /dev/null --wrap 'sleep 600')
  h=$(sbatch --parsable --hold -o /dev/null --wrap 'sleep 600')
  wait_state "$c" RUNNING 30
  expect "long job RUNNING in squeue" "$( [ "$(squeue -h -j "$c" -o %T)" = RUNNING ]; echo $?)"
  expect "held job PENDING in squeue" "$( [ "$(squeue -h -j "$h" -o '%T %r')" = "PENDING JobHeldUser" ]; echo $?)"
  scancel "$c" "$h"
  wait_gone "$c" 30; wait_gone "$h" 30
  for j in "$c" "$h"; do
    expect "job $j CANCELLED (scontrol)" "$( [ "$(ctl_state "$j")" = CANCELLED ]; echo $?)"
    expect "job $j CANCELLED (file)" "$( [ "$(comp_state "$j")" = CANCELLED ]; echo $?)"
  done

  # --- a failing job, and a job that depends on it -----------------------
  f=$(sbatch --parsable -o /dev/null --wrap 'exit 3')
  d=$(sbatch --parsable --dependency="afterok:$f" -o /dev/null --wrap true)
  wait_gone "$f" 30
  expect "failing job FAILED (scontrol)" "$( [ "$(ctl_state "$f")" = FAILED ]; echo $?)"
  expect "its exit code 3:0" "$( [ "$(ctl_field "$f" ExitCode)" = 3:0 ]; echo $?)"
  expect "failing job FAILED (file)" "$( [ "$(comp_state "$f")" = FAILED ]; echo $?)"
  for _ in $(seq 1 50); do
    [ "$(squeue -h -j "$d" -o %r)" = DependencyNeverSatisfied ] && break
    sleep 0.2
  done
  expect "its dependant stays PENDING (DependencyNeverSatisfied)" \
    "$( [ "$(squeue -h -j "$d" -o '%T %r')" = "PENDING DependencyNeverSatisfied" ]; echo $?)"
  scancel "$d"; wait_gone "$d" 30
  expect "cancelled dependant CANCELLED" "$( [ "$(comp_state "$d")" = CANCELLED ]; echo $?)"

  # --- more memory than asked for: killed, FAILED with signal 9 ----------
  m=$(sbatch --parsable --mem=20 -o "$work/m.log" --wrap 'head -c 200m /dev/zero | tail | sleep 60')
  wait_gone "$m" 40
  expect "job over its memory FAILED (scontrol)" "$( [ "$(ctl_state "$m")" = FAILED ]; echo $?)"
  expect "its exit code 0:9" "$( [ "$(ctl_field "$m" ExitCode)" = 0:9 ]; echo $?)"
  expect "job over its memory FAILED (file)" "$( [ "$(comp_state "$m")" = FAILED ]; echo $?)"
  expect "its log says why" "$(grep -q 'exceeded memory limit' "$work/m.log"; echo $?)"

  # --- node failure: the node set DOWN under a running job ---------------
  k=$(sbatch --parsable --no-requeue -o /dev/null --wrap 'sleep 600')
  wait_state "$k" RUNNING 30
  scontrol update nodename="$node" state=down reason=slurm_local_test
  wait_gone "$k" 30
  expect "job on a failed node NODE_FAIL (scontrol)" "$( [ "$(ctl_state "$k")" = NODE_FAIL ]; echo $?)"
  expect "job on a failed node NODE_FAIL (file)" "$( [ "$(comp_state "$k")" = NODE_FAIL ]; echo $?)"
  for _ in $(seq 1 100); do
    [ "$(sinfo -h -N -o %T)" = idle ] && break
    scontrol update nodename="$node" state=resume 2>/dev/null
    sleep 0.2
  done
  expect "node back in service" "$( [ "$(sinfo -h -N -o %T)" = idle ]; echo $?)"
fi

# --- stop ------------------------------------------------------------------
conf=$SLURM_CONF
pids=$(cat "$state/munge/munged.pid" "$state/run/slurmctld.pid" "$state/run/slurmd.pid")
expect "three daemons" "$( [ "$(wc -w <<<"$pids")" = 3 ]; echo $?)"
"$script" stop "$state"
expect "stop deletes STATE" "$( [ ! -e "$state" ]; echo $?)"
for pid in $pids; do
  expect "daemon $pid stopped" "$(! alive "$pid"; echo $?)"
done
left=0
for p in /proc/[0-9]*; do
  [ "${p#/proc/}" = $$ ] && continue
  tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "SLURM_CONF=$conf" \
    && grep -q slurm "$p/comm" 2>/dev/null && left=$((left+1))
done
expect "no slurm process of this cluster left" "$( [ $left -eq 0 ]; echo $?)"

echo "slurm_local $part: $n checks, $fail failed"
[ $fail -eq 0 ]
