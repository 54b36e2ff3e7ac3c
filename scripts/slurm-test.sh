#!/usr/bin/env bash
# Integration test: runs a shipped sweep as a SLURM job array on a real one-node SLURM cluster on
# this machine and checks the merged result against the same sweep run locally (docs/cluster.md).
#
#   scripts/slurm-test.sh            # as root, from anywhere; .ci/run runs it after dotnet test
#
# 1. Installs Debian's slurm-wlm and munge when a command is missing (apt-get; root needed).
# 2. Starts munged, slurmctld and slurmd on 127.0.0.1 with every file (key, slurm.conf, state,
#    spool, logs, pid files) in a fresh temporary folder; nothing is written to /etc. The trap
#    cancels our jobs and stops the three daemons on any exit.
# 3. Runs the sweep locally (the reference), then through scripts/slurm-array.sh as a 4-task array:
#    a. with task 1 made to fail on its second point (a file is put where that point's folder goes):
#       the other tasks complete, the merge job fails with exit 2 naming exactly that point, and
#       no merged sweep.csv exists;
#    b. SLURM's own retry (scontrol requeue) of tasks 0 and 2, task 2 with its folder deleted first:
#       both give the same files as before (same index, same output);
#    c. the failure removed, task 1 resubmitted alone (ARRAY=1 scripts/slurm-array.sh): it skips
#       the point it had finished, the new merge job succeeds, and the merged sweep.csv and every
#       point's files equal the local run's byte for byte, apart from the wall-clock columns
#       sim.wallSeconds and sim.eventsPerSecond.
# Exit 0 when every check holds, 1 when one fails (the logs are printed and the folder kept),
# 2 when the machine cannot run it (not root). Environment: SLURM_TEST_TIMEOUT (seconds to wait
# for each round of jobs, default 600), SLURM_TEST_KEEP=1 (keep the temporary folder).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
cd "$(dirname "$0")/.."
REPO=$(pwd)
SWEEP=configs/sweeps/cluster-smoke.json
TASKS=4
TIMEOUT=${SLURM_TEST_TIMEOUT:-600}
DLL="$REPO/simulator/IommuSim.Cli/bin/Release/net10.0/iommusim.dll"
WALL_KEYS='sim.wallSeconds|sim.eventsPerSecond'

log() { printf '[slurm-test %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); log "ok: $*"; }
fail() { log "FAIL: $*"; FAILED=1; exit 1; }

if [[ $(id -u) -ne 0 ]]; then
  echo "slurm-test: needs root (it installs slurm-wlm/munge when absent and runs slurmd)" >&2
  exit 2
fi

# ---- 1. packages -----------------------------------------------------------------------------
missing=()
for c in munged mungekey slurmctld slurmd sbatch squeue scontrol sinfo; do
  command -v "$c" >/dev/null || missing+=("$c")
done
if ((${#missing[@]})); then
  log "installing slurm-wlm and munge (missing: ${missing[*]})"
  # Keep the packages' own services (system munged, slurmctld on /etc/slurm) from starting:
  # this test runs its own daemons. A policy-rc.d that is already there is left as it is.
  POLICY=/usr/sbin/policy-rc.d
  if [[ ! -e $POLICY ]]; then printf '#!/bin/sh\nexit 101\n' >"$POLICY"; chmod 755 "$POLICY"; OWN_POLICY=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  [[ -z ${OWN_POLICY:-} ]] || rm -f "$POLICY"
fi
log "$(slurmctld -V), munge $(munged -V 2>&1 | awk '{print $1}')"

# ---- 2. the cluster ----------------------------------------------------------------------------
W=$(mktemp -d /tmp/iommusim-slurm-test.XXXXXX)
chmod 755 "$W"   # munged wants the socket's folders searchable by all
FAILED=0
JOBS=()

cleanup() {
  local rc=$?
  set +e
  if [[ -n "${SLURM_CONF:-}" && -f "$W/slurmctld.pid" ]]; then
    for j in "${JOBS[@]}"; do scancel "$j" 2>/dev/null; done
    for _ in $(seq 1 30); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 1; done
  fi
  for f in slurmd.pid slurmctld.pid munge/munged.pid; do
    [[ -f "$W/$f" ]] || continue
    local pid; pid=$(cat "$W/$f")
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  if [[ $rc -ne 0 || $FAILED -ne 0 ]]; then
    log "logs (kept in $W):"
    for f in "$W"/log/*.log "$W"/out/logs/*; do [[ -s "$f" ]] && { echo "== $f"; tail -n 25 "$f"; }; done
  elif [[ "${SLURM_TEST_KEEP:-0}" == 1 ]]; then
    log "kept $W"
  else
    rm -rf "$W"
  fi
  log "daemons stopped"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=16817
while ! port_free "$PORT" || ! port_free $((PORT + 1)); do PORT=$((PORT + 2)); ((PORT < 17817)) || fail "no free port pair in 16817-17817"; done
NODE=$(hostname -s)
CPUS=$(nproc)

mkdir -p "$W/munge-key" "$W/munge" "$W/state" "$W/spool" "$W/log"
chmod 700 "$W/munge-key"
mungekey --create --keyfile="$W/munge-key/munge.key" --bits=1024
munged --force --key-file="$W/munge-key/munge.key" --socket="$W/munge/munge.socket" \
  --pid-file="$W/munge/munged.pid" --log-file="$W/log/munged.log" --seed-file="$W/munge/munged.seed"

# Minimal configuration: root runs everything, no cgroups, no accounting database; one partition
# of this one node, scheduled per CPU. AuthInfo points SLURM at our munged socket.
cat >"$W/slurm.conf" <<EOF
ClusterName=iommusim-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$W/munge/munge.socket
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=1024 State=UNKNOWN
PartitionName=iommusim Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$W/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$NODE"
for i in $(seq 1 60); do
  [[ $(sinfo -h -n "$NODE" -o %T 2>/dev/null) == idle ]] && break
  ((i < 60)) || fail "node $NODE did not become idle within 60 s: $(sinfo 2>&1)"
  sleep 1
done
ok "one-node cluster up: $NODE, $CPUS CPUs, slurmctld port $PORT, all state in $W"

# ---- helpers -----------------------------------------------------------------------------------
# submit: runs scripts/slurm-array.sh (extra env in "$@"), sets ARRAY_ID and MERGE_ID.
submit() {
  local line
  line=$(env "$@" SWEEP_OUT="$W/out" CPUS_PER_TASK=1 TIME_LIMIT=00:10:00 scripts/slurm-array.sh "$SWEEP" "$TASKS" | tail -n 1)
  log "$line"
  [[ $line =~ ^submitted\ array\ ([0-9]+)\ .*\ and\ merge\ ([0-9]+)\; ]] || fail "slurm-array.sh printed no job ids"
  ARRAY_ID=${BASH_REMATCH[1]}; MERGE_ID=${BASH_REMATCH[2]}
  JOBS+=("$ARRAY_ID" "$MERGE_ID")
}
wait_idle() {  # until no job of ours is pending or running
  local t0=$SECONDS
  while [[ -n $(squeue -h -o %i) ]]; do
    ((SECONDS - t0 < TIMEOUT)) || { squeue; fail "jobs still queued after ${TIMEOUT} s"; }
    sleep 1
  done
  log "jobs ended after $((SECONDS - t0)) s"
}
field() { scontrol -o show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }  # job, key
expect_state() {  # job, state[, exit code]
  local s e; s=$(field "$1" JobState); e=$(field "$1" ExitCode)
  [[ $s == "$2" ]] || fail "job $1: state $s, expected $2 (exit $e)"
  [[ -z ${3:-} || $e == "$3:0" ]] || fail "job $1: exit code $e, expected $3"
}
tree_sums() { (cd "$1" && find . -type f ! -name '.*' | LC_ALL=C sort | xargs -r sha256sum); }
strip_wall_json() { grep -v -E "\"($(sed 's/sim\.//g' <<<"$WALL_KEYS"))\"" "$1"; }
strip_wall_csv() {  # drops the wall-clock columns by header name; refuses quoted cells
  grep -q '"' "$1" && fail "$1 has quoted cells; this comparison only handles plain CSV"
  awk -F, -v OFS=, -v re="^($WALL_KEYS)\$" '
    NR == 1 { for (i = 1; i <= NF; i++) drop[i] = ($i ~ re); n = 0; for (i in drop) n += drop[i]; if (n != 2) exit 3 }
    { out = ""; sep = ""; for (i = 1; i <= NF; i++) if (!drop[i]) { out = out sep $i; sep = OFS } print out }' "$1"
}
same_point() {  # dir a, dir b: every file identical, summary.json apart from the wall-clock fields
  local a=$1 b=$2 f
  [[ -f $a/summary.json && -f $b/summary.json ]] || return 1
  [[ $(cd "$a" && ls | LC_ALL=C sort) == $(cd "$b" && ls | LC_ALL=C sort) ]] || return 1
  for f in "$a"/*; do
    f=$(basename "$f")
    if [[ $f == summary.json ]]; then
      diff <(strip_wall_json "$a/$f") <(strip_wall_json "$b/$f") >/dev/null || return 1
    else
      cmp -s "$a/$f" "$b/$f" || return 1
    fi
  done
}

# ---- 3. the sweep: locally, then on the cluster -------------------------------------------------
dotnet build simulator/IommuSim.Cli -c Release -v quiet -nologo
dotnet "$DLL" sweep "$SWEEP" --out "$W/local" --quiet --no-plots
POINTS=$(ls "$W/local/points" | wc -l)
mapfile -t SHARD1 < <(dotnet "$DLL" sweep "$SWEEP" --dry-run --shard 1/$TASKS | awk '/^[0-9][0-9][0-9][0-9] /{print $1}')
((${#SHARD1[@]} >= 2)) || fail "shard 1 of $TASKS needs at least two points for the failure test"
FAIL_POINT=${SHARD1[-1]}   # task 1 finishes its other points, then fails on this one
ok "local reference: $POINTS points; shard 1 has points ${SHARD1[*]}, it will fail on $FAIL_POINT"

# a. one task fails: its finished points stay, the merge names the missing point and writes nothing.
# The shard folder must look like an earlier, interrupted run of this sweep (its sweep.json), or iommusim
# refuses to write into it (docs/limits.md); the file stands where the point's folder would go.
mkdir -p "$W/out/shard-1/points"
cp "$W/local/sweep.json" "$W/out/shard-1/sweep.json"
touch "$W/out/shard-1/points/$FAIL_POINT"
submit
wait_idle
for i in $(seq 0 $((TASKS - 1))); do
  if ((i == 1)); then expect_state "${ARRAY_ID}_$i" FAILED; else expect_state "${ARRAY_ID}_$i" COMPLETED 0; fi
done
expect_state "$MERGE_ID" FAILED 2
want="merge error: 1 of $POINTS points are in none of the folders: $((10#$FAIL_POINT))"
grep -qF "$want" "$W/out/logs/merge.err" || fail "merge.err does not say '$want': $(cat "$W/out/logs/merge.err")"
[[ ! -e $W/out/merged/sweep.csv ]] || fail "a failed merge wrote $W/out/merged/sweep.csv"
for p in "${SHARD1[@]}"; do
  [[ $p == "$FAIL_POINT" ]] || same_point "$W/out/shard-1/points/$p" "$W/local/points/$p" || fail "task 1's finished point $p differs from the local run"
done
ok "failed task: tasks 0,2,3 completed, task 1 failed, merge job exit 2: '$want', nothing merged"
SUMS1=$(tree_sums "$W/out/shard-1/points")

# b. SLURM retries completed tasks with the same index: task 0 as it is, task 2 from nothing.
SUMS0=$(tree_sums "$W/out/shard-0")
cp -r "$W/out/shard-2" "$W/shard-2.before"
rm -rf "$W/out/shard-2"
scontrol requeue "${ARRAY_ID}_0,${ARRAY_ID}_2"
for i in 0 2; do scontrol update jobid="${ARRAY_ID}_$i" StartTime=now; done   # a requeue is held ~2 min by default
wait_idle
for i in 0 2; do
  expect_state "${ARRAY_ID}_$i" COMPLETED 0
  [[ $(field "${ARRAY_ID}_$i" Restarts) -ge 1 ]] || fail "task $i was not run again"
done
[[ $(tree_sums "$W/out/shard-0") == "$SUMS0" ]] || fail "task 0 run again changed its folder"
for d in "$W/shard-2.before/points"/*; do
  same_point "$d" "$W/out/shard-2/points/$(basename "$d")" || fail "task 2 run again from scratch gave a different point $(basename "$d")"
done
[[ $(ls "$W/shard-2.before/points") == $(ls "$W/out/shard-2/points") ]] || fail "task 2 run again wrote other points"
ok "requeued tasks 0 and 2 (Restarts>=1): same index, same output (task 0 byte-identical, task 2 rebuilt identically)"

# c. the failed task resubmitted alone, then merged by the new merge job.
rm "$W/out/shard-1/points/$FAIL_POINT"
submit ARRAY=1
wait_idle
expect_state "${ARRAY_ID}_1" COMPLETED 0
expect_state "$MERGE_ID" COMPLETED 0
grep -q " 1 points run, $((${#SHARD1[@]} - 1)) skipped" "$W/out/logs/shard-1.out" || fail "task 1 did not skip its finished points: $(cat "$W/out/logs/shard-1.out")"
for p in "${SHARD1[@]}"; do
  [[ $p == "$FAIL_POINT" ]] && continue
  [[ $(tree_sums "$W/out/shard-1/points" | grep " ./$p/") == $(grep " ./$p/" <<<"$SUMS1") ]] || fail "rerunning task 1 changed its finished point $p"
done
ok "task 1 resubmitted (ARRAY=1): ran point $FAIL_POINT only, merge job exit 0"

[[ -f $W/out/merged/sweep.csv ]] || fail "no merged sweep.csv"
diff <(strip_wall_csv "$W/local/sweep.csv") <(strip_wall_csv "$W/out/merged/sweep.csv") || fail "merged sweep.csv differs from the local run's"
[[ $(head -n 1 "$W/local/sweep.csv") == $(head -n 1 "$W/out/merged/sweep.csv") ]] || fail "merged sweep.csv has other columns"
cmp -s "$W/local/sweep.json" "$W/out/merged/sweep.json" || fail "merged sweep.json differs from the local run's"
[[ $(ls "$W/out/merged/points") == $(ls "$W/local/points") ]] || fail "merged points differ from the local run's"
for d in "$W/local/points"/*; do
  same_point "$d" "$W/out/merged/points/$(basename "$d")" || fail "merged point $(basename "$d") differs from the local run's"
done
ok "merged result = local run: sweep.csv ($(($(wc -l <"$W/local/sweep.csv") - 1)) rows) byte-identical without sim.wallSeconds and sim.eventsPerSecond; sweep.json and all $POINTS point folders identical"

echo "slurm-test: $CHECKS passed, 0 failed"
