#!/usr/bin/env bash
# Re-runs every reference evaluation and refreshes results/reference/ (sweep.csv, sweep.json and
# the plots of each sweep; per-point folders are left in a temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build simulator/IommuSim.Cli -c Release --nologo -v quiet
BIN="dotnet simulator/IommuSim.Cli/bin/Release/net10.0/iommusim.dll"
TMP=$(mktemp -d)
for s in iotlb-knee designs reach-knee mapping-cost nvme-qd nic-dma-api-modes iotlb-wall; do
  $BIN sweep "configs/sweeps/$s.json" --out "$TMP/$s" --quiet
  mkdir -p "results/reference/$s"
  rm -f "results/reference/$s"/*.png
  cp "$TMP/$s/sweep.csv" "$TMP/$s/sweep.json" "$TMP/$s"/*.png "results/reference/$s/"
done
echo "reference sweeps refreshed; point folders in $TMP"
