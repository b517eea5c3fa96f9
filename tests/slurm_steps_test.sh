#!/usr/bin/env bash
# A night on Slurm and PostgreSQL, with the real jobs: a local Slurm
# cluster (scripts/slurm-local.sh) and a throw-away PostgreSQL
# (scripts/pg-local.sh), both started here in private directories and
# stopped on every exit; a small simulated survey (two tiles, six visits of
# 256^2 pixels); `rapid run --executor slurm` end to end with `rapid job`.
# Then `rapid run` killed (SIGKILL) while its jobs are queued, one job
# cancelled in Slurm, registration meanwhile, run again, and the cancelled
# job run again with --retry-failed: every job registered exactly once.
#
#   slurm_steps_test.sh RAPID SLURM_LOCAL_SH PG_LOCAL_SH
#
# Without Slurm or PostgreSQL installed the test is skipped (exit 77),
# except in CI (CI=true), where that is a failure.
set -u
rapid=$1 slurm_sh=$2 pg_sh=$3 fake_job=$4
PATH=$PATH:/usr/sbin:/usr/local/sbin:/sbin

skip() {
  echo "$1: scripts/install-deps.sh installs it" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 77
}
for p in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
  command -v "$p" >/dev/null || skip "Slurm is not installed (no $p)"
done
command -v psql >/dev/null || skip "PostgreSQL is not installed (no psql)"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null ||
  skip "PostgreSQL is not installed (no initdb)"

base=${RAPID_TEST_TMP:-${TMPDIR:-/tmp}}
mkdir -p "$base"
tmp=$(mktemp -d "$base/slurmsteps.XXXXXX")
runpid=""
cleanup() {
  [ -n "$runpid" ] && kill -KILL "$runpid" 2>/dev/null
  "$slurm_sh" stop "$tmp/slurm" || echo "FAIL slurm-local.sh stop"
  "$pg_sh" stop "$tmp/pg" >/dev/null || echo "FAIL pg-local.sh stop"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
unset RAPID_DB RAPID_JOB_CMD STARTDATETIME ENDDATETIME FAKE_JOB_RECORD
export JOBPROCDATE=20261207

. "$(dirname "$0")/checks.sh"
same() { # same NAME GOT WANT
  n=$((n+1))
  if [ "$2" != "$3" ]; then echo "FAIL $1: got '$2', wanted '$3'"; fail=$((fail+1)); fi
}
q() { psql -X -q -t -A -d "$RAPID_DB" -c "$1"; }

# --- the two servers
eval "$("$slurm_sh" start "$tmp/slurm")" || { echo "FAIL: slurm-local.sh start"; exit 1; }
pgurl=$("$pg_sh" start "$tmp/pg") || { echo "FAIL: pg-local.sh start"; exit 1; }
jobcomp=$(scontrol show config | sed -n 's/^JobCompLoc *= *//p')

# --- the survey: visits every 5 days from 2028-09-07; the last three are
# launched, the first three are each tile's reference inputs
"$rapid" sim --out "$tmp/sim" --seed 1 --size 256 --scas 1 --epochs 6 --tiles 2 >/dev/null 2>&1 ||
  { echo "FAIL: rapid sim"; exit 1; }
range=(--start 2028-09-20 --end 2028-10-05)
night() { # night NAME: a database and a work directory of its own
  psql -X -q -d "$pgurl" -c "CREATE DATABASE $1" || { echo "FAIL: createdb $1"; exit 1; }
  export RAPID_DB=${pgurl%/*}/$1 RAPID_WORK=$tmp/$1
  mkdir -p "$RAPID_WORK"
  printf '[launch]\nref_size = 400\n[slurm]\npoll = 1\n' >"$RAPID_WORK/rapid.ini"
  "$rapid" db init >/dev/null 2>&1 && "$rapid" ingest "$tmp/sim" >/dev/null 2>&1 &&
    "$rapid" ingest-psf "$tmp/sim/psf" >/dev/null 2>&1 || { echo "FAIL: ingest ($1)"; exit 1; }
}
# The rows of a complete night: 2 reference jobs, 6 science jobs, 6
# post-processing jobs, all ended 0-31 and each with its Slurm id; 2
# reference images; the difference images of 6 science images, one of
# each (image, method), each post-processed.
complete() { # complete CASE
  local before=$fail jid
  same "$1: jobs" "$(q 'select ppid, count(*), sum(status), max(exitcode) <= 31, count(slurm) from jobs group by ppid order by ppid')" \
    "$(printf '12|2|2|t|2\n15|6|6|t|6\n17|6|6|t|6')"
  same "$1: reference images, once" "$(q 'select count(*), sum(vbest) from refimages')" "2|2"
  same "$1: difference images of every science image" "$(q 'select count(distinct rid) from diffimages')" "6"
  same "$1: each (image, method) once" \
    "$(q 'select count(*) from (select rid, method from diffimages group by rid, method having count(*) > 1) d')" "0"
  [ "$fail" = "$before" ] && return
  for jid in $(q 'select jid from jobs where exitcode > 31 or status = 0'); do
    echo "  job $jid: $(q "select ppid, status, exitcode, slurm from jobs where jid = $jid")," \
      "its log: $(tail -3 "$RAPID_WORK/products/$JOBPROCDATE/jid$jid/job.log" 2>/dev/null | tr '\n' ' ')"
  done
}
slurm_state() { # the state Slurm gives the array task A_i
  local s
  s=$(squeue -h -r -t all -j "$1" -o %T 2>/dev/null)
  [ -n "$s" ] || s=$(grep "ArrayJobId=${1%_*} ArrayTaskId=${1#*_} " "$jobcomp" | tail -1 |
    sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  echo "$s"
}

# --- end to end
night e2e
check run 0 "$rapid" run "${range[@]}" --executor slurm
complete e2e
expect "e2e: ids are array tasks" \
  "$(q 'select slurm from jobs' | grep -vcE '^[0-9]+_[0-9]+$' | grep -qx 0; echo $?)"
same "e2e: one array per kind" "$(q "select ppid, count(distinct split_part(slurm, '_', 1)) from jobs group by ppid order by ppid")" \
  "$(printf '12|1\n15|1\n17|1')"
# a job's own exit code is Slurm's: 4 (one method failed) is FAILED to Slurm
same "e2e: Slurm ended each job as it ended" \
  "$(q 'select jid, exitcode, slurm from jobs order by jid' | while IFS='|' read -r jid code id; do
       s=$(slurm_state "$id"); [ "$code" = 0 ] && [ "$s" = COMPLETED ] || { [ "$code" != 0 ] && [ "$s" = FAILED ]; } || echo "$jid $code $s"; done)" ""
expect "e2e: science jobs found their reference jobs ended (dependency)" \
  "$(! grep -l 'has not ended' "$RAPID_WORK"/products/20261207/*/job.log >/dev/null 2>&1; echo $?)"
expect "e2e: submissions said" "$(grep -q 'jobs: 8 jobs submitted to Slurm in 2 arrays, 0 in Slurm already' <<<"$err"; echo $?)"
expect "e2e: progress" "$(grep -q 'rapid run: jobs 8/8' <<<"$err"; echo $?)"
expect "e2e: summary" "$(grep -q 'reference images made: 2' <<<"$out"; echo $?)"
ids=$(q 'select jid, slurm from jobs order by jid')
check run-again 0 "$rapid" run "${range[@]}" --executor slurm
complete "e2e again"
same "e2e again: nothing submitted" "$(q 'select jid, slurm from jobs order by jid')" "$ids"

# --- killed while its jobs are queued: they are held (extra = --hold) so
# that the kill surely lands before they run
night kill
cp "$RAPID_WORK/rapid.ini" "$tmp/hold.ini"
printf 'extra = --hold\n' >>"$tmp/hold.ini"
"$rapid" run "${range[@]}" --executor slurm --config "$tmp/hold.ini" >/dev/null 2>&1 &
runpid=$!
for _ in $(seq 1 150); do
  [ "$(q 'select count(slurm) from jobs' 2>/dev/null)" = 8 ] && break
  sleep 0.2
done
kill -KILL "$runpid"; wait "$runpid" 2>/dev/null; runpid=""
same "kill: 8 jobs in Slurm" "$(q 'select count(slurm) from jobs where status = 0')" "8"
held=$(q 'select slurm from jobs order by jid')
same "kill: all pending" "$(for id in $held; do slurm_state "$id"; done | sort -u)" "PENDING"
check register-queued 0 "$rapid" register
expect "kill: registration leaves queued jobs alone" "$(grep -q '0 lost, 0 bad manifests, 8 still running' <<<"$err"; echo $?)"
same "kill: nothing ended" "$(q 'select count(*) from jobs where status = 1')" "0"
victim=$(q 'select jid from jobs where ppid = 15 order by jid limit 1')
vid=$(q "select slurm from jobs where jid = $victim")
scancel "$vid"
ids=$(q 'select jid, slurm from jobs order by jid')
# run again while the jobs are still held, then let them go
"$rapid" run "${range[@]}" --executor slurm >"$tmp/out" 2>"$tmp/err" &
runpid=$!
for _ in $(seq 1 100); do
  grep -q 'rapid run: jobs 0/7' "$tmp/err" 2>/dev/null && break
  sleep 0.1
done
# shellcheck disable=SC2046
scontrol release $(for id in $held; do echo "${id%_*}"; done | sort -u) 2>/dev/null
wait "$runpid"; rc=$?; runpid=""
out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
same "kill: run again" "$rc" "0"
expect "kill: the queued jobs waited for, none submitted again" \
  "$(grep -q 'jobs: 0 jobs submitted to Slurm in 0 arrays, 7 in Slurm already' <<<"$err"; echo $?)"
same "kill: ids kept" "$(q "select jid, slurm from jobs where ppid <> 17 order by jid")" "$ids"
same "kill: the cancelled job ended 82" "$(q "select exitcode from jobs where jid = $victim")" "82"
expect "kill: reported" "$(grep -q "job $victim (ppid 15): killed (82): Slurm job $vid ended CANCELLED" <<<"$err"; echo $?)"
expect "kill: in the summary" "$(grep -q "jid $victim (science) ended 82" <<<"$out"; echo $?)"
same "kill: the others registered once" \
  "$(q 'select ppid, count(*), sum(status), max(exitcode) <= 31 from jobs where exitcode <> 82 group by ppid order by ppid')" \
  "$(printf '12|2|2|t\n15|5|5|t\n17|5|5|t')"
same "kill: no product of the cancelled job" "$(q "select count(*) from diffimages d join jobs j on j.rid = d.rid where j.jid = $victim")" "0"
check run-no-retry 0 "$rapid" run "${range[@]}" --executor slurm
same "kill: a failed job stays without --retry-failed" "$(q "select exitcode, slurm from jobs where jid = $victim")" "82|$vid"
check run-retry 0 "$rapid" run "${range[@]}" --executor slurm --retry-failed
complete "kill, cancel, retry"
expect "kill: retried under a new Slurm id" "$( [ "$(q "select slurm from jobs where jid = $victim")" != "$vid" ]; echo $?)"

# --- a running job cancelled: the job program is a wrapper that, for the
# first science job to start, sleeps (killed by scancel, it leaves no last
# log line) and runs `rapid` for the others
night cancel
{ echo '#!/bin/sh'
  echo "if grep -q '^\[science\]' \"\$2\" && mkdir '$tmp/victim' 2>/dev/null; then"
  echo "  basename \"\$2\" .ini >'$tmp/victim/jid'; sleep 120; exit 0"
  echo "fi"
  echo "exec '$rapid' \"\$@\""; } >"$tmp/wrapper.sh"
chmod +x "$tmp/wrapper.sh"
RAPID_JOB_CMD=$tmp/wrapper.sh "$rapid" run "${range[@]}" --executor slurm >"$tmp/out" 2>"$tmp/err2" &
runpid=$!
vstate="" victim=0
for _ in $(seq 1 150); do
  victim=$(sed 's/^jid//' "$tmp/victim/jid" 2>/dev/null)
  [ -n "$victim" ] && vid=$(q "select slurm from jobs where jid = $victim") &&
    vstate=$(slurm_state "$vid") && [ "$vstate" = RUNNING ] && break
  sleep 0.2
done
same "cancel: job $victim running" "$vstate" "RUNNING"
scancel "$vid"
wait "$runpid"; rc=$?; runpid=""
same "cancel: run ends" "$rc" "0"
same "cancel: the running job cancelled ends 82" "$(q "select ppid, exitcode from jobs where jid = $victim")" "15|82"
expect "cancel: reported" "$(grep -q "job $victim (ppid 15): killed (82): Slurm job $vid ended CANCELLED before the job wrote its last log line" "$tmp/err2"; echo $?)"
same "cancel: the others registered" \
  "$(q "select ppid, count(*), max(exitcode) <= 31 from jobs where jid <> $victim group by ppid order by ppid")" \
  "$(printf '12|2|t\n15|5|t\n17|5|t')"

# --- a job whose Slurm id Slurm does not know, with no log: lost, not
# waited for
night lost
check launch-none 0 "$rapid" launch "${range[@]}" --executor none
q "update jobs set slurm = '999999_0' where ppid = 12" >/dev/null
check launch-gone 0 "$rapid" launch "${range[@]}" --executor slurm --wait
expect "lost: unknown ids not submitted again, not waited for" \
  "$(grep -q 'jobs: 6 jobs submitted to Slurm in 1 arrays, 0 in Slurm already' <<<"$err"; echo $?)"
expect "lost: launch --wait waited for the others" "$(grep -q 'rapid launch: jobs 6/6' <<<"$err"; echo $?)"
same "lost: nothing left in Slurm" "$(squeue -h -o %i)" ""
check register-gone 0 "$rapid" register
same "lost: 80 for the unknown ids" "$(q 'select ppid, exitcode, count(*) from jobs where ppid = 12 group by ppid, exitcode')" "12|80|2"
expect "lost: said" "$(grep -q 'lost (80): Slurm job 999999_0 is no longer known to Slurm' <<<"$err"; echo $?)"

# --- killed between sbatch and the storing of the Slurm ids: sbatch is a
# wrapper that, as told by SBATCH_KILL, kills its caller (`rapid run`)
# before it submits anything ("before") or once the real sbatch answered
# ("after:N", on its N-th call) - the jobs are fake and held, so nothing
# ends before the checks
night adopt
real_sbatch=$(command -v sbatch)
mkdir -p "$tmp/bin"
{ echo '#!/bin/sh'
  echo "n=\$(( \$(cat '$tmp/sbatch.calls' 2>/dev/null || echo 0) + 1 )); echo \$n >'$tmp/sbatch.calls'"
  echo "[ \"\$SBATCH_KILL\" = before ] && { kill -KILL \$PPID; exit 1; }"
  echo "out=\$('$real_sbatch' \"\$@\"); rc=\$?"
  echo "echo \"\$out\"; echo \"\$out\" >>'$tmp/sbatch.ids'"
  echo "[ \"\$SBATCH_KILL\" = \"after:\$n\" ] && kill -KILL \$PPID"
  echo "exit \$rc"; } >"$tmp/bin/sbatch"
chmod +x "$tmp/bin/sbatch"
cp "$RAPID_WORK/rapid.ini" "$tmp/hold.ini"
printf 'extra = --hold\n' >>"$tmp/hold.ini"
export FAKE_JOB_RECORD=$tmp/adopt.runs
killed_run() { # SBATCH_KILL: `rapid run` through the wrapper, killed by it
  rm -f "$tmp/sbatch.calls"
  PATH=$tmp/bin:$PATH SBATCH_KILL=$1 RAPID_JOB_CMD=$fake_job \
    "$rapid" run "${range[@]}" --executor slurm --config "$tmp/hold.ini" >/dev/null 2>"$tmp/err" &
  wait $!
}
killed_run before 2>/dev/null
same "adopt: killed inside sbatch" "$?" "137"
same "adopt: nothing in Slurm" "$(squeue -h -o %i)" ""
same "adopt: no Slurm id stored" "$(q 'select count(*) from jobs where slurm ~ $$^[0-9]+_[0-9]+$$')" "0"
same "adopt: the reference jobs marked as being submitted" "$(q "select count(*) from jobs where ppid = 12 and slurm like '@%'")" "2"
killed_run after:2 2>/dev/null
same "adopt: killed after the second sbatch answered" "$?" "137"
same "adopt: the reference array submitted again, then the science one" "$(wc -l <"$tmp/sbatch.ids")" "2"
refarray=$(sed -n 1p "$tmp/sbatch.ids") sciarray=$(sed -n 2p "$tmp/sbatch.ids")
same "adopt: the reference jobs' ids stored" "$(q "select count(*) from jobs where ppid = 12 and slurm like '${refarray}\\_%'")" "2"
same "adopt: the science jobs' ids not stored" "$(q "select count(*) from jobs where ppid = 15 and slurm like '${sciarray}\\_%'")" "0"
same "adopt: both arrays held in Slurm" "$(squeue -h -o '%F %T' | sort -u)" "$(printf '%s PENDING\n%s PENDING' "$refarray" "$sciarray")"
check register-unstored 0 "$rapid" register
expect "adopt: registration leaves the jobs being submitted alone" \
  "$(grep -q '0 lost, 0 bad manifests, 8 still running' <<<"$err"; echo $?)"
RAPID_JOB_CMD=$fake_job "$rapid" run "${range[@]}" --executor slurm >"$tmp/out" 2>"$tmp/err" &
runpid=$!
for _ in $(seq 1 100); do
  grep -q 'rapid run: jobs 0/8' "$tmp/err" 2>/dev/null && break
  sleep 0.1
done
scontrol release "$refarray" "$sciarray" 2>/dev/null
wait "$runpid"; rc=$?; runpid=""
err=$(cat "$tmp/err")
same "adopt: run again" "$rc" "0"
expect "adopt: nothing submitted again, the array found" \
  "$(grep -q 'jobs: 0 jobs submitted to Slurm in 0 arrays, 8 in Slurm already' <<<"$err"; echo $?)"
expect "adopt: said" "$(grep -q 'rapid executor: 6 jobs found in Slurm by their submission.s mark' <<<"$err"; echo $?)"
same "adopt: the science jobs got the ids of the array found" \
  "$(q "select count(*) from jobs where ppid = 15 and slurm like '${sciarray}\\_%'")" "6"
same "adopt: each job ran once" "$(sort "$tmp/adopt.runs" | uniq -d)" ""
same "adopt: every job ran" "$(awk '{ print $1 }' "$tmp/adopt.runs" | sort | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' ')" "12:2 15:6 17:6 "
same "adopt: every job registered" "$(q 'select ppid, count(*), sum(status), max(exitcode) <= 31 from jobs group by ppid order by ppid')" \
  "$(printf '12|2|2|t\n15|6|6|t\n17|6|6|t')"
unset FAKE_JOB_RECORD

echo "slurm_steps: $n checks, $fail failed"
[ "$fail" = 0 ]
