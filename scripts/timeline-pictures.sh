#!/bin/sh
# Redraws the timeline pictures of docs/timeline.md (docs/images/timeline-*.png) from fresh runs.
# Run outputs go to a temporary folder that is removed afterwards.
# IOMMUSIM may name a built binary, e.g. IOMMUSIM="dotnet simulator/IommuSim.Cli/bin/Release/net10.0/iommusim.dll".
set -eu
cd "$(dirname "$0")/.."
IOMMUSIM=${IOMMUSIM:-"dotnet run --project simulator/IommuSim.Cli -c Release --"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The quick-start config, one request in steady state (from 100 us on).
$IOMMUSIM run configs/quickstart.json --out "$tmp/qs" --no-plots --quiet \
    --timeline "$tmp/qs.json" --timeline-window 100us.. --timeline-max-requests 200
$IOMMUSIM timeline-plot "$tmp/qs.json" docs/images/timeline-quickstart.png

# One nested (4-level over 4-level) IOTLB miss: walk caches off and one request at a time, so the
# 2-D walk reads all (4+1)(4+1)-1 = 24 entries and nothing queues in front of it.
$IOMMUSIM run configs/designs/nested.json --out "$tmp/nested" --no-plots --quiet \
    --set simulation:maxRequests=3000 --set iommu:walkCaches:enabled=false --set workloads:0:outstanding=1 \
    --timeline "$tmp/nested.json" --timeline-window 100us.. --timeline-max-requests 100
$IOMMUSIM timeline-plot "$tmp/nested.json" docs/images/timeline-nested-miss.png

# The first writes of the same config on the SMMUv3, walk caches off: the configuration-cache miss's STE/CD
# fetch (stage-2 reads of the CD's IPA included) and a 24-read 2-D walk.
$IOMMUSIM run configs/designs/nested.json --out "$tmp/smmu" --no-plots --quiet \
    --set iommu:architecture=smmuv3 --set iommu:smmu:walkCache:enabled=false --set simulation:maxRequests=200 \
    --timeline "$tmp/smmu.json" --timeline-max-requests 20
$IOMMUSIM timeline-plot "$tmp/smmu.json" docs/images/timeline-smmuv3-nested-miss.png
