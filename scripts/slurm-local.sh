#!/usr/bin/env bash
# A throw-away Slurm cluster on this machine, for tests and one-machine
# trials: munged with its own key and socket, slurmctld and slurmd on
# localhost, no systemd, no cgroups, no slurmdbd.  One node (this machine's
# CPUs and memory, as `slurmd -C` reports them) in one partition "local";
# jobs share the node by cores and memory (select/cons_tres,
# CR_Core_Memory).  Finished jobs are written to STATE/jobcomp.txt (one
# line per job, "JobState=..."), since sacct needs slurmdbd.
#
#   scripts/slurm-local.sh start [STATE]   start a cluster (or find the one
#                                          running), wait until its node is
#                                          idle, print on stdout the line to
#                                          evaluate: export SLURM_CONF=...
#   scripts/slurm-local.sh env   [STATE]   print that line again
#   scripts/slurm-local.sh stop  [STATE]   cancel its jobs, stop the daemons
#                                          and delete STATE
#
#   eval "$(scripts/slurm-local.sh start)"; sbatch --wrap hostname
#
# STATE is a directory that holds everything of the cluster (default
# ${TMPDIR:-/tmp}/rapid-slurm-$(id -u)); give each concurrent user its own.
# Two clusters never share ports, sockets or files.
#
# As root every daemon runs as root (munged with --force) and jobs run as
# the user who submits them.  As a normal user the daemons run as that user
# and so can only run that user's jobs.
set -euo pipefail

PATH=$PATH:/usr/sbin:/usr/local/sbin:/sbin
action=${1:-}
state=${2:-${TMPDIR:-/tmp}/rapid-slurm-$(id -u)}
case "$state" in /*) ;; *) state=$PWD/$state ;; esac
set_state() { # the real path: the daemons' environment records it
  [ -d "$state" ] && state=$(cd "$state" && pwd -P)
  conf=$state/slurm.conf
  statefile=$state/cluster
}
set_state

die() { echo "slurm-local: $*" >&2; exit 1; }

need_slurm() {
  local p
  for p in munged munge unmunge slurmctld slurmd sbatch sinfo squeue scontrol scancel; do
    command -v "$p" >/dev/null \
      || die "Slurm is not installed (no $p; scripts/install-deps.sh installs slurm-wlm and munge)"
  done
}

load_state() { # sets SOCK SPOOL SHORTDIR NODE, or returns 1
  [ -f "$statefile" ] || return 1
  # shellcheck disable=SC1090
  . "$statefile"
  [ -n "${SOCK:-}" ] && [ -n "${SPOOL:-}" ] && [ -n "${NODE:-}" ] && [ -f "$conf" ]
}

# A process that has exited may linger as a zombie until its parent (here
# often init, which may be slow to reap) collects it.
alive() { # PID
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# The pid in FILE if that process is alive and is NAME (a pid file outlives
# its daemon, and the pid may since belong to someone else).
daemon_pid() { # FILE NAME
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] \
    && alive "$pid" || return 1
  echo "$pid"
}

slurm() { SLURM_CONF=$conf "$@"; }

running() {
  load_state || return 1
  daemon_pid "$state/munge/munged.pid" munged >/dev/null \
    && daemon_pid "$state/run/slurmctld.pid" slurmctld >/dev/null \
    && daemon_pid "$state/run/slurmd.pid" slurmd >/dev/null \
    && node_up
}

node_state() { slurm sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1; }
node_up() { # the node takes jobs (it may be busy with some)
  case "$(node_state)" in idle|mixed|allocated|completing) return 0 ;; esac
  return 1
}

print_env() { printf 'export SLURM_CONF=%q\n' "$conf"; }

port_free() { # nothing listening there
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
free_port() { # a free port other than $1
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    [ "$p" != "${1:-}" ] && port_free "$p" && { echo "$p"; return; }
  done
  die "no free loopback port found"
}

stop_pid() { # PIDFILE NAME: TERM, then KILL after 10 s
  local pid i
  pid=$(daemon_pid "$1" "$2") || return 0
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# Job steps left after the daemons are gone (a cluster stopped while jobs
# ran): slurmstepd processes started by our slurmd carry our SLURM_CONF in
# their environment; each runs its job in a process group of its own.
kill_leftover_steps() {
  local p pid ppid pgid rest
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
    tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qxF "SLURM_CONF=$conf" || continue
    for c in /proc/[0-9]*/stat; do
      read -r _ _ _ ppid pgid rest <"$c" 2>/dev/null || continue
      [ "$ppid" = "$pid" ] && kill -KILL -- "-$pgid" 2>/dev/null
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

cleanup_cluster() {
  local ids i
  if load_state && daemon_pid "$state/run/slurmctld.pid" slurmctld >/dev/null; then
    ids=$(slurm squeue -h -o %A 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      slurm scancel $ids 2>/dev/null || true
      for i in $(seq 1 100); do
        [ -z "$(slurm squeue -h -o %A 2>/dev/null)" ] && break
        sleep 0.1
      done
    fi
  fi
  stop_pid "$state/run/slurmd.pid" slurmd
  stop_pid "$state/run/slurmctld.pid" slurmctld
  [ -f "$conf" ] && kill_leftover_steps
  stop_pid "$state/munge/munged.pid" munged
  load_state 2>/dev/null || true
  if [ -n "${SHORTDIR:-}" ]; then rm -rf "$SHORTDIR"; fi
  # Only what start made: STATE may have been given with other files in it.
  rm -rf "$state/munge" "$state/ctld" "$state/spool" "$state/log" "$state/run" \
    "$conf" "$statefile" "$state/plugstack.conf" "$state/jobcomp.txt"
  rmdir "$state" 2>/dev/null || true
}

start_munge() {
  local args
  mkdir -p "$state/munge"
  chmod 755 "$state/munge" # job users reach the socket through it
  # A key of our own: clusters on one machine do not trust each other.
  head -c 1024 /dev/urandom >"$state/munge/munge.key"
  chmod 600 "$state/munge/munge.key"
  args=(--socket="$SOCK" --key-file="$state/munge/munge.key"
        --pid-file="$state/munge/munged.pid" --log-file="$state/munge/munged.log"
        --seed-file="$state/munge/munged.seed")
  # munged refuses to run as root unless forced.
  [ "$(id -u)" -eq 0 ] && args+=(--force)
  munged "${args[@]}" 2>"$state/munge/munged.err" \
    || { cat "$state/munge/munged.err" "$state/munge/munged.log" >&2 2>/dev/null; die "munged did not start"; }
  munge -n -S "$SOCK" | unmunge -S "$SOCK" >/dev/null \
    || die "munge does not answer on $SOCK (log: $state/munge/munged.log)"
}

machine() { # sets NODE (this host's name) and HW (its sizes)
  # "NodeName=host CPUs=.. Boards=.. ... RealMemory=.." and "UpTime=..".
  local hw
  hw=$(slurmd -C | head -1)
  NODE=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$hw")
  [ -n "$NODE" ] || die "slurmd -C did not describe this machine: $hw"
  # Only the sizes: anything else slurmd finds (GPUs) needs more configuring.
  hw=$(tr ' ' '\n' <<<"$hw" | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=' | tr '\n' ' ')
  HW=${hw% }
}

# Where the Unix sockets go: munged's, and slurmstepd's in slurmd's spool
# (SPOOL/NODE_JOBID.STEPID).  A socket's path is limited to 108 bytes, so a
# deep STATE gets them in a short directory of its own under /tmp.
socket_dirs() { # sets SOCK SPOOL SHORTDIR
  SHORTDIR=""
  SOCK=$state/munge/munge.socket
  SPOOL=$state/spool
  if [ $(( ${#SPOOL} + ${#NODE} + 24 )) -gt 107 ] || [ ${#SOCK} -gt 107 ]; then
    SHORTDIR=$(mktemp -d "/tmp/rapid-slurm.XXXXXX")
    chmod 755 "$SHORTDIR"
    SOCK=$SHORTDIR/munge.socket
    SPOOL=$SHORTDIR/spool
  fi
}

save_state() {
  printf 'SOCK=%q\nSPOOL=%q\nSHORTDIR=%q\nNODE=%q\n' "$SOCK" "$SPOOL" \
    "$SHORTDIR" "$NODE" >"$statefile"
}

write_conf() { # CTLD_PORT SLURMD_PORT
  local user cpus mem
  user=$(id -un)
  cpus=$(sed -n 's/.*\bCPUs=\([0-9]*\).*/\1/p' <<<"$HW")
  mem=$(sed -n 's/.*\bRealMemory=\([0-9]*\).*/\1/p' <<<"$HW")
  : >"$state/plugstack.conf"
  cat >"$conf" <<EOF
# Generated by scripts/slurm-local.sh: a one-machine cluster.
ClusterName=rapidlocal
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$1
SlurmdPort=$2
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
PlugStackConfig=$state/plugstack.conf
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=2
JobAcctGatherParams=OverMemoryKill,UsePss
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$state/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$(( mem / cpus ))
# Schedule as soon as a job is submitted or ends (by default the
# controller gathers submissions for 3 s between passes).
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
SlurmdTimeout=60
KillWait=2
MinJobAge=60
MaxJobCount=50000
MaxArraySize=10001
NodeName=$NODE NodeAddr=127.0.0.1 $HW State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

# slurmctld answers, or returns 1 when it has exited (a port taken).
wait_ctld() {
  local i
  for i in $(seq 1 300); do
    slurm scontrol ping 2>/dev/null | grep -q 'is UP' && return 0
    [ "$i" -gt 10 ] && ! daemon_pid "$state/run/slurmctld.pid" slurmctld >/dev/null && return 1
    sleep 0.1
  done
  return 1
}

wait_idle() {
  local i s
  for i in $(seq 1 300); do
    s=$(node_state)
    [ "$s" = idle ] && return 0
    [ "$i" -gt 10 ] && ! daemon_pid "$state/run/slurmd.pid" slurmd >/dev/null && return 1
    sleep 0.1
  done
  echo "slurm-local: node $NODE is ${s:-unknown}" >&2
  return 1
}

start() {
  local ctld_port slurmd_port
  need_slurm
  if running; then print_env; return; fi
  cleanup_cluster # a stale record: some daemon is gone
  mkdir -p "$state"
  set_state
  # Whatever goes wrong from here, leave nothing running.
  trap cleanup_cluster EXIT
  machine
  socket_dirs
  save_state
  start_munge
  for _ in 1 2 3 4 5; do
    rm -rf "$state/ctld" "$SPOOL" "$state/log" "$state/run"
    mkdir -p "$state/ctld" "$SPOOL" "$state/log" "$state/run"
    ctld_port=$(free_port)
    slurmd_port=$(free_port "$ctld_port")
    write_conf "$ctld_port" "$slurmd_port"
    # A port may be taken between our check and the bind: then try others.
    if ! slurm slurmctld -i 2>>"$state/log/start.err" || ! wait_ctld; then
      grep -q 'Address already in use' "$state/log/slurmctld.log" 2>/dev/null \
        && { stop_pid "$state/run/slurmctld.pid" slurmctld; continue; }
      cat "$state/log/start.err" "$state/log/slurmctld.log" >&2 2>/dev/null || true
      die "slurmctld did not start"
    fi
    if ! slurm slurmd -N "$NODE" 2>>"$state/log/start.err" || ! wait_idle; then
      if grep -q 'Address already in use' "$state/log/slurmd.log" 2>/dev/null; then
        stop_pid "$state/run/slurmd.pid" slurmd
        stop_pid "$state/run/slurmctld.pid" slurmctld
        continue
      fi
      cat "$state/log/start.err" "$state/log/slurmd.log" >&2 2>/dev/null || true
      die "slurmd did not start or its node did not become idle"
    fi
    trap - EXIT
    print_env
    return
  done
  die "no free ports for slurmctld and slurmd after 5 tries"
}

case "$action" in
  start) start ;;
  env) running || die "no cluster running for $state"; print_env ;;
  stop) cleanup_cluster ;;
  *) echo "usage: scripts/slurm-local.sh start|env|stop [STATE_DIR]" >&2; exit 2 ;;
esac
