using System.Text.Json.Nodes;
using IommuSim.Hardware.Smmu;
using IommuSim.Simulation.Running;
using static IommuSim.Simulation.Results.SummaryBuilder;

namespace IommuSim.Simulation.Results;

/// <summary>
/// The summary of a run on the SMMUv3 (<c>iommu.architecture = smmuv3</c>): the architecture-neutral
/// keys (iotlb.*, walks.*, walkCaches.hits/misses, contextCache.*, latencyNs.translation, iommu.*,
/// invalidation.*) are filled from the SMMU's blocks in place of the idle VT-d unit's, so sweeps
/// and plots compare the two architectures on the same columns, and an <c>smmu</c> section holds what
/// only the SMMU has (docs/results.md). VT-d runs are not touched.
/// </summary>
public static class SmmuSummary
{
    public static void Apply(JsonObject s, RunOutput run)
    {
        var smmu = run.Platform.Smmu;
        if (smmu is null) return;
        var tlb = smmu.Tlb;
        var w = smmu.Walker;
        s["iotlb"] = new JsonObject
        {
            ["lookups"] = tlb.Lookups,
            ["hits"] = tlb.Hits,
            ["misses"] = tlb.Misses,
            ["missRate"] = Round(tlb.Lookups > 0 ? tlb.Misses / (double)tlb.Lookups : 0),
            ["evictions"] = tlb.Evictions,
            ["invalidatedEntries"] = tlb.InvalidatedEntries,
            ["entries"] = tlb.Capacity,
        };
        long reads = w.Stage1Reads + w.Stage2Reads;
        s["walks"] = new JsonObject
        {
            ["count"] = w.Count,
            ["coalesced"] = w.Coalesced,
            ["queued"] = w.Queued,
            ["memoryReads"] = reads,
            ["stage1Reads"] = w.Stage1Reads,
            ["stage2Reads"] = w.Stage2Reads,
            ["readsPerWalk"] = Round(w.Count > 0 ? reads / (double)w.Count : 0),
            ["meanLatencyNs"] = Round(w.WalkLatency.Mean / 1000.0),
        };
        if (s["per4KiB"] is JsonObject per)
        {
            long bytes = 0;
            foreach (var d in run.Platform.Devices) bytes += d.Stats.Bytes;
            double units = bytes / 4096.0;
            double Per(long v) => Round(units > 0 ? v / units : 0);
            per["iotlbMisses"] = Per(tlb.Misses);
            per["walks"] = Per(w.Count);
            per["iommuMemoryReads"] = Per(reads);
        }
        s["walkCaches"] = new JsonObject { ["hits"] = smmu.WalkCaches.Hits, ["misses"] = smmu.WalkCaches.Misses };
        s["contextCache"] = new JsonObject { ["hits"] = smmu.ConfigCache.Hits, ["misses"] = smmu.ConfigCache.Misses };
        if (s["latencyNs"] is JsonObject lat) lat["translation"] = Latency(smmu.TranslationLatency);
        if (s["invalidation"] is JsonObject inv)
        {
            inv["descriptors"] = smmu.CommandQueue.Executed - smmu.CommandQueue.Syncs;
            inv["busyNs"] = 0;
            inv["iotlbDescriptors"] = 0;
            inv["deviceTlbDescriptors"] = smmu.AtcInvalidations;
            inv["waitDescriptors"] = smmu.CommandQueue.Syncs;
        }
        s["iommu"] = new JsonObject
        {
            ["translations"] = smmu.Translations,
            ["passThrough"] = smmu.Bypassed,
            ["tableFetchReads"] = smmu.ConfigFetchReads,
            ["inputQueueFullRefusals"] = smmu.SlotFullRefusals,
        };
        // Faults: every event record the SMMU wrote (translation, permission, C_BAD_* …) or lost to a full queue.
        if (s["faults"] is JsonObject faults) faults["count"] = smmu.EventQueue.Written + smmu.EventQueue.Lost;
        s["smmu"] = Section(smmu);
    }

    private static JsonObject Section(SmmuUnit smmu) => new()
    {
        ["configCache"] = new JsonObject { ["hits"] = smmu.ConfigCache.Hits, ["misses"] = smmu.ConfigCache.Misses, ["fetchReads"] = smmu.ConfigFetchReads },
        ["walkCaches"] = new JsonObject
        {
            ["hits"] = smmu.WalkCaches.Hits,
            ["misses"] = smmu.WalkCaches.Misses,
            ["ipaCacheHits"] = smmu.WalkCaches.IpaCacheHits,
            ["ipaCacheMisses"] = smmu.WalkCaches.IpaCacheMisses,
        },
        ["walker"] = new JsonObject { ["hardwareUpdates"] = smmu.Walker.HardwareUpdates, ["dirtyUpdateWalks"] = smmu.DirtyUpdateWalks },
        ["commandQueue"] = new JsonObject
        {
            ["commands"] = smmu.CommandQueue.Executed,
            ["syncs"] = smmu.CommandQueue.Syncs,
            ["syncLatencyNs"] = Latency(smmu.CommandQueue.SyncLatency),
            ["atcInvalidations"] = smmu.AtcInvalidations,
        },
        ["eventQueue"] = new JsonObject { ["records"] = smmu.EventQueue.Written, ["lost"] = smmu.EventQueue.Lost },
        ["priQueue"] = new JsonObject { ["records"] = smmu.PriQueue.Written, ["lost"] = smmu.PriQueue.Lost },
        ["stalls"] = smmu.Stalls,
        ["slotFullRefusals"] = smmu.SlotFullRefusals,
    };
}
