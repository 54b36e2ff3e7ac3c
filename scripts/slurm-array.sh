#!/usr/bin/env bash
# Run one IommuSim sweep as a SLURM job array: task I of N runs `iommusim sweep --shard I/N`,
# then a dependent job merges the shards into one sweep.csv and plots (docs/sweeps.md, docs/cluster.md).
#
#   scripts/slurm-array.sh configs/sweeps/iotlb-knee.json 8            # 8 array tasks
#   SWEEP_OUT=/scratch/$USER/iotlb-knee scripts/slurm-array.sh configs/sweeps/iotlb-knee.json 8
#   ARRAY=3,5 scripts/slurm-array.sh configs/sweeps/iotlb-knee.json 8  # rerun tasks 3 and 5, merge again
#
# Each task writes its own folder $SWEEP_OUT/shard-I (points/NNNN/ written atomically), so tasks
# never touch each other's files, and a task run again with the same index (SLURM requeue, or
# ARRAY=I) skips the points it finished (--resume) and writes the same files. The merge job runs
# when every task has ended, also when some failed (afterany): then it fails with exit 2 and its
# log (logs/merge.err) names the missing points, and nothing is merged. Tested on a one-node
# cluster by scripts/slurm-test.sh. Run from the repository root on a shared filesystem.
#
# Environment: SWEEP_OUT (default results/<sweep file name>-slurm), CPUS_PER_TASK (default 4),
# TIME_LIMIT (default 01:00:00), PARTITION (optional), DOTNET (default dotnet),
# ARRAY (the task indices to submit, sbatch --array syntax; default 0-(N_TASKS-1)).
# The last line printed is `submitted array ARRAY_ID (...) and merge MERGE_ID; ...`.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 SWEEP.json N_TASKS [extra sbatch args...]" >&2
  exit 2
fi
SWEEP=$1
N=$2
shift 2
if ! [[ "$N" =~ ^[1-9][0-9]*$ ]]; then echo "N_TASKS must be a positive integer, got '$N'" >&2; exit 2; fi
if [[ ! -f "$SWEEP" ]]; then echo "sweep file not found: $SWEEP" >&2; exit 2; fi

NAME=$(basename "$SWEEP" .json)
OUT=${SWEEP_OUT:-results/$NAME-slurm}
CPUS=${CPUS_PER_TASK:-4}
TIME=${TIME_LIMIT:-01:00:00}
DOTNET=${DOTNET:-dotnet}
ARRAY=${ARRAY:-0-$((N - 1))}
if ! [[ "$ARRAY" =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || (( $(tr ',-' '\n\n' <<<"$ARRAY" | sort -n | tail -1) >= N )); then
  echo "ARRAY must be task indices below N_TASKS=$N in sbatch --array form (0-7, 1,3), got '$ARRAY'" >&2; exit 2
fi
PART=()
[[ -n "${PARTITION:-}" ]] && PART=(--partition "$PARTITION")
mkdir -p "$OUT/logs"

# Build once, before any task starts, so tasks do not race to compile the same project.
"$DOTNET" build simulator/IommuSim.Cli -c Release -v quiet -nologo
DLL="$(pwd)/simulator/IommuSim.Cli/bin/Release/net10.0/iommusim.dll"
BIN="'$DOTNET' '$DLL'"   # as the job scripts (--wrap) spell it

# Check the whole sweep once up front (bad keys, bad plot columns → exit 2 here, not in N tasks).
"$DOTNET" "$DLL" sweep "$SWEEP" --dry-run --quiet

ARRAY_ID=$(sbatch --parsable "${PART[@]}" "$@" \
  --job-name "iommusim-$NAME" --array "$ARRAY" --cpus-per-task "$CPUS" --time "$TIME" \
  --output "$OUT/logs/shard-%a.out" --error "$OUT/logs/shard-%a.err" \
  --wrap "$BIN sweep '$SWEEP' --shard \${SLURM_ARRAY_TASK_ID}/$N --jobs \${SLURM_CPUS_PER_TASK:-$CPUS} --out '$OUT'/shard-\${SLURM_ARRAY_TASK_ID} --resume --quiet")

SHARDS=$(for ((i = 0; i < N; i++)); do printf "'%s/shard-%d' " "$OUT" "$i"; done)
MERGE_ID=$(sbatch --parsable "${PART[@]}" "$@" \
  --job-name "iommusim-$NAME-merge" --dependency "afterany:$ARRAY_ID" --cpus-per-task 1 --time 00:30:00 \
  --output "$OUT/logs/merge.out" --error "$OUT/logs/merge.err" \
  --wrap "$BIN merge $SHARDS --out '$OUT/merged'")

echo "submitted array $ARRAY_ID (tasks $ARRAY of $N) and merge $MERGE_ID; results: $OUT/merged/sweep.csv"
