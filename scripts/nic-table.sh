#!/usr/bin/env bash
# Re-runs the shipped NIC configs (configs/nic/*.json) and rewrites results/reference/nic/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build simulator/IommuSim.Cli -c Release --nologo -v quiet
BIN="dotnet simulator/IommuSim.Cli/bin/Release/net10.0/iommusim.dll"
TMP=$(mktemp -d)
CONFIGS="nic100-recycle nic100-lazy nic100-strict-map nic200-recycle nic200-recycle-2M nic200-lazy nic200-strict-map"
for c in $CONFIGS; do $BIN run "configs/nic/$c.json" --out "$TMP/$c" --quiet; done
python3 - "$TMP" $CONFIGS > results/reference/nic/table.md <<'PY'
import json, sys
tmp, configs = sys.argv[1], sys.argv[2:]
print("""# NIC receive at 100 and 200 Gbit/s: recycled buffers vs a buffer mapped per packet

Each row is one shipped config (`configs/nic/`): 1500-byte packets, Poisson arrivals, 4 KiB pages unless
named -2M. `*-recycle` reuse a fixed pool of buffers mapped once (one queue); `*-strict-map` and
`*-lazy` map a new buffer per packet through the DMA API on 8 queues, one driver CPU each, and issue a
stray DMA to the buffer just unmapped after 1 % of unmaps. `invalidation queue busy` is the fraction
of the run the IOMMU's (single, shared) invalidation queue was working. Made by `scripts/nic-table.sh`.

| config | offered (Gbit/s) | queues (driver CPUs) | delivered (Gbit/s) | drop rate | packet p50 (ns) | packet p99 (ns) | IOTLB miss rate | invalidation queue busy | stale translations used | faults |
|---|---|---|---|---|---|---|---|---|---|---|""")
for c in configs:
    d = json.load(open(f"{tmp}/{c}/summary.json"))
    cfg = json.load(open(f"configs/nic/{c}.json"))
    n = d["devices"]["nic0"]["nic"]
    offered = cfg["workloads"][0]["nic"].get("offeredGbps")
    busy = d["invalidation"]["busyNs"] / d["sim"]["simulatedNs"]
    print(f"| `{c}` | {offered:g} | {n['queues']} | {n['throughputGbps']:.1f} | {n['dropRate']:.3f} | {n['latencyNs']['p50']:.0f} | "
          f"{n['latencyNs']['p99']:.0f} | {d['iotlb']['missRate']:.3f} | {busy:.2f} | {d['security']['staleTranslationsUsed']} | {d['faults']['count']} |")
PY
echo "results/reference/nic/table.md refreshed; run folders in $TMP"
