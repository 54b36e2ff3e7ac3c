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
# Designs on VT-d and SMMUv3 (premapped), nested per-request trapped on both, and SMMUv3 trapped vs guest VCMDQ.
for s in architectures architectures-per-request architectures-hwqueue; do d=${s#architectures}; d=${d#-}; d=${d:-designs}; $BIN sweep "configs/sweeps/$s.json" --out "$TMP/$s" --quiet; mkdir -p "results/reference/architectures/$d"; rm -f "results/reference/architectures/$d"/*.png; cp "$TMP/$s/sweep.csv" "$TMP/$s/sweep.json" "$TMP/$s"/*.png "results/reference/architectures/$d/"; done
# Rubin et al. SOSP'24 Fig. 2 (partial reproduction): the sweep, its measured overlay and residuals.
$BIN sweep configs/sweeps/rubin-sosp24.json --out "$TMP/rubin-sosp24" --quiet
$BIN plot "$TMP/rubin-sosp24" --measured data/rubin-sosp24/fig2.csv
mkdir -p results/reference/rubin-sosp24
rm -f results/reference/rubin-sosp24/*.png results/reference/rubin-sosp24/*.residuals.*
cp "$TMP/rubin-sosp24"/sweep.csv "$TMP/rubin-sosp24"/sweep.json "$TMP/rubin-sosp24"/*.png "$TMP/rubin-sosp24"/*.residuals.* results/reference/rubin-sosp24/
echo "reference sweeps refreshed; point folders in $TMP"
