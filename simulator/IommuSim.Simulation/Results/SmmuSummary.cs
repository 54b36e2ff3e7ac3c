using System.Text.Json.Nodes;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;
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
            per["pdeCacheMisses"] = Per(smmu.WalkCaches.LevelMisses(2));
            per["pdpteCacheMisses"] = Per(smmu.WalkCaches.LevelMisses(1));
            per["pml4eCacheMisses"] = Per(smmu.WalkCaches.LevelMisses(0));
            per["iommuMemoryReads"] = Per(reads);
        }
        var wc = smmu.WalkCaches;
        // Levels 2/1/0 of a VMSAv8-64 walk cache have the reach of VT-d's PDE/PDPTE/PML4E caches with a 4 KiB granule;
        // the IPA cache (stage-2 translations of stage-1 table addresses) is what VT-d's nested TLB holds.
        s["walkCaches"] = new JsonObject
        {
            ["hits"] = wc.Hits,
            ["misses"] = wc.Misses,
            ["nestedTlbHits"] = wc.IpaCacheHits,
            ["nestedTlbMisses"] = wc.IpaCacheMisses,
            ["pdeMisses"] = wc.LevelMisses(2),
            ["pdpteMisses"] = wc.LevelMisses(1),
            ["pml4eMisses"] = wc.LevelMisses(0),
            ["pml5eMisses"] = 0,
        };
        s["contextCache"] = new JsonObject { ["hits"] = smmu.ConfigCache.Hits, ["misses"] = smmu.ConfigCache.Misses };
        if (s["latencyNs"] is JsonObject lat) lat["translation"] = Latency(smmu.TranslationLatency);
        if (s["invalidation"] is JsonObject inv)
        {
            // Every command queue the SMMU consumes: the main one and the guest-owned VCMDQs (Tegra241 CMDQV).
            long commands = 0, syncs = 0, busyPs = 0, tlbi = 0;
            foreach (var q in smmu.Statistics.All)
            {
                commands += q.Commands;
                syncs += q.Of(SmmuCommandClass.Sync);
                busyPs += q.BusyPs;
                tlbi += q.Of(SmmuCommandClass.Tlbi);
            }
            inv["descriptors"] = commands - syncs;
            inv["busyNs"] = Round(busyPs / 1000.0);
            inv["iotlbDescriptors"] = tlbi;
            inv["deviceTlbDescriptors"] = smmu.AtcInvalidations;
            inv["waitDescriptors"] = syncs;
        }
        s["iommu"] = new JsonObject
        {
            ["translations"] = smmu.Translations,
            ["passThrough"] = smmu.Bypassed,
            ["tableFetchReads"] = smmu.ConfigFetchReads,
            ["inputQueueFullRefusals"] = smmu.SlotFullRefusals,
        };
        // Faults: every transaction that raised an SMMU event (C_BAD_*, F_*), recorded in the event queue or not, by event type.
        var st = smmu.Statistics;
        var by = new JsonObject();
        foreach (var type in SmmuStatistics.EventTypes)
            if (st.FaultsOf(type) > 0) by[SmmuStatistics.Key(type)] = st.FaultsOf(type);
        s["faults"] = new JsonObject { ["count"] = st.Faults, ["byReason"] = by };
        var section = Section(smmu);
        Vcmdqs(section, smmu);
        s["smmu"] = section;
    }

    private static JsonObject Section(SmmuUnit smmu) => new()
    {
        ["configCache"] = new JsonObject
        {
            ["hits"] = smmu.ConfigCache.Hits,
            ["misses"] = smmu.ConfigCache.Misses,
            ["fetchReads"] = smmu.ConfigFetchReads,
            ["fetches"] = smmu.Statistics.ConfigFetchLatency.Count,
            ["fetchesJoined"] = smmu.Statistics.ConfigFetchesJoined,
            ["fetchLatencyNs"] = Latency(smmu.Statistics.ConfigFetchLatency),
        },
        ["walkCaches"] = new JsonObject
        {
            ["hits"] = smmu.WalkCaches.Hits,
            ["misses"] = smmu.WalkCaches.Misses,
            ["ipaCacheHits"] = smmu.WalkCaches.IpaCacheHits,
            ["ipaCacheMisses"] = smmu.WalkCaches.IpaCacheMisses,
            ["level0Misses"] = smmu.WalkCaches.LevelMisses(0),
            ["level1Misses"] = smmu.WalkCaches.LevelMisses(1),
            ["level2Misses"] = smmu.WalkCaches.LevelMisses(2),
        },
        ["walker"] = new JsonObject { ["hardwareUpdates"] = smmu.Walker.HardwareUpdates, ["dirtyUpdateWalks"] = smmu.DirtyUpdateWalks },
        ["commandQueue"] = Queue(smmu.Statistics.Main, new JsonObject
        {
            ["commands"] = smmu.CommandQueue.Executed,
            ["syncs"] = smmu.CommandQueue.Syncs,
            ["syncLatencyNs"] = Latency(smmu.CommandQueue.SyncLatency),
            ["atcInvalidations"] = smmu.AtcInvalidations,
        }),
        ["eventQueue"] = new JsonObject { ["records"] = smmu.EventQueue.Written, ["lost"] = smmu.EventQueue.Lost },
        ["priQueue"] = new JsonObject { ["records"] = smmu.PriQueue.Written, ["lost"] = smmu.PriQueue.Lost },
        ["faults"] = new JsonObject
        {
            ["recorded"] = smmu.Statistics.FaultsRecorded,
            ["unrecorded"] = smmu.Statistics.Faults - smmu.Statistics.FaultsRecorded,
            ["stalled"] = smmu.Statistics.FaultsStalled,
            ["stage2"] = smmu.Statistics.FaultsStage2,
        },
        ["stalls"] = smmu.Stalls,
        ["slotFullRefusals"] = smmu.SlotFullRefusals,
    };

    /// <summary>A command queue's consumption (main queue, or a Tegra241 VCMDQ in <c>smmu.vcmdqs.&lt;i&gt;</c>).</summary>
    private static JsonObject Queue(SmmuQueueStatistics q, JsonObject o)
    {
        var cls = new JsonObject();
        foreach (var c in Enum.GetValues<SmmuCommandClass>()) cls[ClassKey(c)] = q.Of(c);
        var types = new JsonObject();
        foreach (var op in Enum.GetValues<SmmuOpcode>())
            if (q.Of(op) > 0) types[OpcodeKey(op)] = q.Of(op);
        if (!o.ContainsKey("commands")) o["commands"] = q.Commands;
        if (!o.ContainsKey("syncs")) o["syncs"] = q.Of(SmmuCommandClass.Sync);
        o["byClass"] = cls;
        o["byType"] = types;
        o["syncWaitNs"] = Latency(q.SyncWait);
        o["fullStalls"] = q.FullStalls;
        o["busyNs"] = Round(q.BusyPs / 1000.0);
        return o;
    }

    /// <summary>The VCMDQs' sections (absent without extra queues), in creation order.</summary>
    private static void Vcmdqs(JsonObject smmuSection, SmmuUnit smmu)
    {
        if (smmu.Statistics.ExtraCount == 0) return;
        var o = new JsonObject();
        int i = 0;
        foreach (var q in smmu.Statistics.Extra) o[i++.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Queue(q, new JsonObject());
        smmuSection["vcmdqs"] = o;
    }

    public static string ClassKey(SmmuCommandClass c) => c switch
    {
        SmmuCommandClass.Cfgi => "cfgi",
        SmmuCommandClass.Tlbi => "tlbi",
        SmmuCommandClass.AtcInv => "atcInv",
        SmmuCommandClass.PriResp => "priResp",
        SmmuCommandClass.Resume => "resume",
        SmmuCommandClass.Sync => "sync",
        _ => "prefetch",
    };

    /// <summary>CMD_TLBI_NH_VA → tlbiNhVa (the opcode's name in camelCase).</summary>
    public static string OpcodeKey(SmmuOpcode op) => char.ToLowerInvariant(op.ToString()[0]) + op.ToString()[1..];
}
