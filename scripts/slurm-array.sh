#!/usr/bin/env bash
# Run one IommuSim sweep as a SLURM job array: task I of N runs `iommusim sweep --shard I/N`,
# then a dependent job merges the shards into one sweep.csv and plots (docs/sweeps.md).
#
#   scripts/slurm-array.sh configs/sweeps/iotlb-knee.json 8            # 8 array tasks
#   SWEEP_OUT=/scratch/$USER/iotlb-knee scripts/slurm-array.sh configs/sweeps/iotlb-knee.json 8
#
# Each task writes its own folder $SWEEP_OUT/shard-I (points/NNNN/ written atomically), so tasks
# never touch each other's files and a failed task can simply be resubmitted (--resume skips the
# points it finished). Run from the repository root on a shared filesystem.
#
# Environment: SWEEP_OUT (default results/<sweep file name>-slurm), CPUS_PER_TASK (default 4),
# TIME_LIMIT (default 01:00:00), PARTITION (optional), DOTNET (default dotnet).
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
PART=()
[[ -n "${PARTITION:-}" ]] && PART=(--partition "$PARTITION")
mkdir -p "$OUT/logs"

# Build once, before any task starts, so tasks do not race to compile the same project.
"$DOTNET" build simulator/IommuSim.Cli -c Release -v quiet -nologo
BIN="$DOTNET $(pwd)/simulator/IommuSim.Cli/bin/Release/net10.0/iommusim.dll"

# Check the whole sweep once up front (bad keys, bad plot columns → exit 2 here, not in N tasks).
$BIN sweep "$SWEEP" --dry-run --quiet

ARRAY_ID=$(sbatch --parsable "${PART[@]}" "$@" \
  --job-name "iommusim-$NAME" --array "0-$((N - 1))" --cpus-per-task "$CPUS" --time "$TIME" \
  --output "$OUT/logs/shard-%a.out" --error "$OUT/logs/shard-%a.err" \
  --wrap "$BIN sweep '$SWEEP' --shard \${SLURM_ARRAY_TASK_ID}/$N --jobs \${SLURM_CPUS_PER_TASK:-$CPUS} --out '$OUT'/shard-\${SLURM_ARRAY_TASK_ID} --resume --quiet")

SHARDS=$(for ((i = 0; i < N; i++)); do printf "'%s/shard-%d' " "$OUT" "$i"; done)
MERGE_ID=$(sbatch --parsable "${PART[@]}" "$@" \
  --job-name "iommusim-$NAME-merge" --dependency "afterok:$ARRAY_ID" --cpus-per-task 1 --time 00:30:00 \
  --output "$OUT/logs/merge.out" --error "$OUT/logs/merge.err" \
  --wrap "$BIN merge $SHARDS --out '$OUT/merged'")

echo "submitted array $ARRAY_ID ($N tasks) and merge $MERGE_ID; results: $OUT/merged/sweep.csv"
