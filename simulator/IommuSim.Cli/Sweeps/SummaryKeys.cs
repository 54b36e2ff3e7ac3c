using IommuSim.Hardware.Iommu.Faults;

namespace IommuSim.Cli.Sweeps;

/// <summary>
/// The flattened <c>summary.json</c> keys (spec/results.md plus the extra keys SummaryBuilder writes), in
/// the order sweep.csv lists them. Sweep files are checked against this list before anything runs, so a
/// misspelt plot column fails at once instead of after the sweep. A test compares it with a real summary.
/// </summary>
public static class SummaryKeys
{
    private static readonly string[] LatencyFields = ["count", "mean", "p50", "p90", "p99", "p999", "max"];

    private static readonly string[] DeviceFields =
    [
        "issued", "completed", "faulted", "bytes", "tlps", "creditStalls", "throughputGbps",
        .. LatencyFields.Select(f => $"latencyNs.{f}"),
    ];

    /// <summary>Every fixed key, in canonical column order (device keys follow, then unknown keys sorted).</summary>
    public static readonly IReadOnlyList<string> Fixed =
    [
        "name", "seed", "configHash", "design",
        "sim.events", "sim.simulatedNs", "sim.wallSeconds", "sim.eventsPerSecond",
        "requests.issued", "requests.completed", "requests.faulted", "requests.bytes",
        "throughput.gbps", "throughput.mrps",
        "iotlb.lookups", "iotlb.hits", "iotlb.misses", "iotlb.missRate", "iotlb.evictions", "iotlb.invalidatedEntries", "iotlb.entries",
        "walks.count", "walks.coalesced", "walks.queued", "walks.memoryReads", "walks.stage1Reads", "walks.stage2Reads",
        "walks.readsPerWalk", "walks.meanLatencyNs",
        "walkCaches.hits", "walkCaches.misses", "walkCaches.nestedTlbHits", "walkCaches.nestedTlbMisses",
        "contextCache.hits", "contextCache.misses", "pasidCache.hits", "pasidCache.misses",
        .. LatencyFields.Select(f => $"latencyNs.translation.{f}"),
        .. LatencyFields.Select(f => $"latencyNs.dma.{f}"),
        "faults.count",
        .. Enum.GetValues<FaultReason>().Select(r => $"faults.byReason.{r.Key()}"),
        "invalidation.descriptors", "invalidation.busyNs", "invalidation.iotlbDescriptors", "invalidation.deviceTlbDescriptors", "invalidation.waitDescriptors",
        "security.staleTranslationsUsed",
        "pcie.tlps", "pcie.dllps", "pcie.linkUtilization", "pcie.upstreamUtilization", "pcie.downstreamUtilization", "pcie.rawGbpsPerLink",
        "iommu.translations", "iommu.passThrough", "iommu.tableFetchReads", "iommu.inputQueueFullRefusals",
        "memory.reads", "memory.writes", "memory.walkReads", "memory.walkLlcHits",
    ];

    private static readonly Dictionary<string, int> Rank = Fixed.Select((k, i) => (k, i)).ToDictionary(t => t.k, t => t.i, StringComparer.Ordinal);

    /// <summary>Keys whose values are text, not numbers.</summary>
    public static readonly IReadOnlySet<string> TextKeys = new HashSet<string>(StringComparer.Ordinal) { "name", "configHash", "design" };

    /// <summary>True for a fixed key or <c>devices.&lt;device&gt;.&lt;field&gt;</c> of a device the config defines.</summary>
    public static bool IsKnown(string key, IEnumerable<string> deviceNames)
    {
        if (Rank.ContainsKey(key)) return true;
        foreach (var d in deviceNames)
        {
            string prefix = $"devices.{d}.";
            if (key.StartsWith(prefix, StringComparison.Ordinal) && DeviceFields.Contains(key[prefix.Length..])) return true;
        }
        return false;
    }

    /// <summary>Orders a set of keys: fixed keys in list order, then device keys by device (order of
    /// <paramref name="deviceOrder"/>) and field, then any others sorted ordinally.</summary>
    public static List<string> Order(IEnumerable<string> keys, IReadOnlyList<string> deviceOrder)
    {
        int DeviceRank(string k)
        {
            for (int i = 0; i < deviceOrder.Count; i++)
                if (k.StartsWith($"devices.{deviceOrder[i]}.", StringComparison.Ordinal)) return i;
            return int.MaxValue;
        }
        int FieldRank(string k)
        {
            int dot = k.IndexOf('.', "devices.".Length);
            int i = dot < 0 ? -1 : Array.IndexOf(DeviceFields, k[(dot + 1)..]);
            return i < 0 ? int.MaxValue : i;
        }
        return keys.Distinct(StringComparer.Ordinal)
            .Select(k => (k, group: Rank.ContainsKey(k) ? 0 : k.StartsWith("devices.", StringComparison.Ordinal) ? 1 : 2))
            .OrderBy(t => t.group)
            .ThenBy(t => t.group == 0 ? Rank[t.k] : t.group == 1 ? DeviceRank(t.k) : 0)
            .ThenBy(t => t.group == 1 ? FieldRank(t.k) : 0)
            .ThenBy(t => t.k, StringComparer.Ordinal)
            .Select(t => t.k)
            .ToList();
    }
}
