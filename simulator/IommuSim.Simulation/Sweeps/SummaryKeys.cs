using IommuSim.Simulation.Config;
using IommuSim.Simulation.Results;
using IommuSim.Simulation.Running;
using IommuSim.Hardware.Iommu.Faults;

namespace IommuSim.Simulation.Sweeps;

/// <summary>
/// The flattened <c>summary.json</c> keys a sweep may plot. Sweep files are checked against them before
/// anything runs, so a misspelt plot column fails at once instead of after the sweep. The set is the
/// contract keys of spec/results.md (<see cref="Contract"/>), every fault reason, and whatever a one-request
/// probe run of the base config writes (so keys SummaryBuilder gains later are accepted without a list to
/// maintain, including <c>devices.&lt;name&gt;.*</c>).
/// </summary>
public static class SummaryKeys
{
    private static readonly string[] LatencyFields = ["mean", "p50", "p90", "p95", "p99", "p999", "max"];

    /// <summary>The required keys of spec/results.md (flattened), without the per-device ones.</summary>
    public static readonly IReadOnlyList<string> Contract =
    [
        "name", "seed", "configHash",
        "sim.events", "sim.simulatedNs", "sim.wallSeconds", "sim.eventsPerSecond",
        "requests.issued", "requests.completed", "requests.faulted", "requests.bytes",
        "throughput.gbps",
        "iotlb.lookups", "iotlb.hits", "iotlb.misses", "iotlb.missRate", "iotlb.evictions", "iotlb.invalidatedEntries",
        "walks.count", "walks.coalesced", "walks.memoryReads", "walks.stage1Reads", "walks.stage2Reads",
        "walkCaches.hits", "walkCaches.misses",
        "contextCache.hits", "contextCache.misses", "pasidCache.hits", "pasidCache.misses",
        .. LatencyFields.Select(f => $"latencyNs.translation.{f}"),
        .. LatencyFields.Select(f => $"latencyNs.dma.{f}"),
        "faults.count",
        "invalidation.descriptors", "invalidation.busyNs",
        "security.staleTranslationsUsed",
        "pcie.tlps", "pcie.linkUtilization",
    ];

    /// <summary>Keys whose values are text, not numbers.</summary>
    public static readonly IReadOnlySet<string> TextKeys = new HashSet<string>(StringComparer.Ordinal) { "name", "configHash", "design" };

    /// <summary>The keys a sweep over <paramref name="baseConfig"/> can plot: contract keys, fault reasons, and a probe run's keys.</summary>
    public static HashSet<string> Known(LoadedConfig baseConfig)
    {
        var set = new HashSet<string>(Contract, StringComparer.Ordinal);
        foreach (var r in Enum.GetValues<FaultReason>()) set.Add($"faults.byReason.{r.Key()}");
        foreach (var k in SmmuKeys()) set.Add(k);
        foreach (var k in ProbeKeys(baseConfig)) set.Add(k);
        return set;
    }

    /// <summary>SMMUv3 keys that only appear when non-zero (event types, command types) or at run time (VCMDQs, up to 8).</summary>
    public static IEnumerable<string> SmmuKeys()
    {
        foreach (var t in Hardware.Observers.SmmuStatistics.EventTypes) yield return $"faults.byReason.{Hardware.Observers.SmmuStatistics.Key(t)}";
        var queues = new List<string> { "smmu.commandQueue" };
        for (int i = 0; i < 8; i++) queues.Add($"smmu.vcmdqs.{i}");
        foreach (var q in queues)
        {
            foreach (var op in Enum.GetValues<Hardware.Smmu.Queues.SmmuOpcode>()) yield return $"{q}.byType.{SmmuSummary.OpcodeKey(op)}";
            foreach (var c in Enum.GetValues<Hardware.Observers.SmmuCommandClass>()) yield return $"{q}.byClass.{SmmuSummary.ClassKey(c)}";
            foreach (var k in new[] { "commands", "syncs", "fullStalls", "busyNs" }) yield return $"{q}.{k}";
            foreach (var f in LatencyFields) yield return $"{q}.syncWaitNs.{f}";
            yield return $"{q}.syncWaitNs.count";
        }
    }

    /// <summary>The flattened keys of a summary of <paramref name="baseConfig"/> cut to one measured request (no warm-up).</summary>
    public static IEnumerable<string> ProbeKeys(LoadedConfig baseConfig)
    {
        var c = baseConfig.Config;
        var sim = c.Simulation;
        long max = sim.MaxRequests, warm = sim.WarmupRequests;
        double maxUs = sim.MaxSimulatedUs;
        try
        {
            sim.MaxRequests = 1;
            sim.WarmupRequests = 0;
            sim.MaxSimulatedUs = 1;
            var run = SimulationRunner.Run(baseConfig);
            return SummaryBuilder.Flatten(SummaryBuilder.Build(run)).Select(kv => kv.Key).ToList();
        }
        finally
        {
            sim.MaxRequests = max;
            sim.WarmupRequests = warm;
            sim.MaxSimulatedUs = maxUs;
        }
    }

    /// <summary>
    /// One column order for the union of several summaries' keys, each list in its summary's (fixed)
    /// order: a key first seen in a later summary (a fault reason only some points hit) goes right after
    /// the key that precedes it there. Depends only on the lists and their order, so an unsharded sweep
    /// and a merge of shards (both read the points in index order) get the same columns.
    /// </summary>
    public static List<string> MergeOrder(IEnumerable<IReadOnlyList<string>> keyLists)
    {
        var order = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var keys in keyLists)
        {
            string? prev = null;
            foreach (var k in keys)
            {
                if (seen.Add(k)) order.Insert(prev is null ? 0 : order.IndexOf(prev) + 1, k);
                prev = k;
            }
        }
        return order;
    }
}
