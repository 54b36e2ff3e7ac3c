#!/usr/bin/env bash
# Re-runs the pcie-bench calibration and prediction sweeps and refreshes results/reference/pcie-bench/
# (sweep.csv, sweep.json, plots, and for the calibration sweeps the measured overlays and residual tables).
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build simulator/IommuSim.Cli -c Release --nologo -v quiet
BIN="dotnet simulator/IommuSim.Cli/bin/Release/net10.0/iommusim.dll"
OUT=results/reference/pcie-bench
TMP=$(mktemp -d)
MEAS=data/pcie-bench/broadwell-e5-2630v4/measured
for s in bw-window lat-window size; do
  $BIN sweep "configs/sweeps/pcie-bench-$s.json" --jobs "${JOBS:-1}" --out "$TMP/$s" --quiet
  $BIN plot "$TMP/$s" --measured "$MEAS/$s.csv"
  rm -rf "$OUT/calibration/$s"; mkdir -p "$OUT/calibration/$s"
  cp "$TMP/$s"/sweep.csv "$TMP/$s"/sweep.json "$TMP/$s"/*.png "$TMP/$s"/*.residuals.* "$OUT/calibration/$s/"
done
for s in pcie-bench-predict pcie-bench-predict-lat; do
  $BIN sweep "configs/sweeps/$s.json" --jobs "${JOBS:-1}" --out "$TMP/$s" --quiet
  rm -rf "$OUT/${s#pcie-bench-}"; mkdir -p "$OUT/${s#pcie-bench-}"
  cp "$TMP/$s"/sweep.csv "$TMP/$s"/sweep.json "$TMP/$s"/*.png "$OUT/${s#pcie-bench-}/"
done
echo "pcie-bench calibration and predictions refreshed; point folders in $TMP"
