using System.Text.Json.Nodes;
using IommuSim.Simulation.Sweeps;

namespace IommuSim.Simulation.Tests;

/// <summary>
/// summary.json and latency.csv on <c>iommu.architecture = smmuv3</c> (docs/results.md, "SMMUv3 runs"):
/// every key VT-d writes is there, those with an SMMU meaning are filled from the SMMU's blocks and hooks,
/// those without stay 0; faults by SMMU event type add up to faults.count; command queues are counted per
/// queue (main vs Tegra241 VCMDQ); and the summary is deterministic.
/// </summary>
public class SmmuSummaryTests
{
    private const string Smmu = "iommu:architecture=smmuv3";

    private static IReadOnlyDictionary<string, JsonNode?> Run(string config, params string[] set)
        => Simulator.Run(Simulator.LoadConfig(Repo.Config(config), set)).Flattened;

    private static double D(IReadOnlyDictionary<string, JsonNode?> k, string key) => N(k[key]);

    private static double N(JsonNode? n) => double.Parse(n!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Every_vtd_key_is_in_the_smmu_summary_and_those_with_an_smmu_meaning_are_filled()
    {
        // Cold start (no warm-up) with per-request strict mapping: configuration fetches, walk-cache misses at every level,
        // TLBI + CMD_SYNC per unmap, and stray DMAs that fault.
        string[] set = ["simulation:warmupRequests=0", "simulation:maxRequests=1500", "workloads:0:mapping=per-request",
            "translation:dmaApi:mode=strict", "workloads:0:strayDmaFraction=0.1"];
        var vtd = Run("designs/single-stage.json", set);
        var smmu = Run("designs/single-stage.json", [Smmu, .. set]);
        foreach (var key in vtd.Keys.Where(k => !k.StartsWith("faults.byReason.", StringComparison.Ordinal)))
            Assert.True(smmu.ContainsKey(key), $"smmuv3 summary lacks {key}");
        string[] filled =
        [
            "iotlb.lookups", "iotlb.misses", "walks.count", "walks.memoryReads", "walks.stage1Reads", "walks.readsPerWalk", "walks.meanLatencyNs",
            "walkCaches.hits", "walkCaches.misses", "walkCaches.pdeMisses", "walkCaches.pdpteMisses", "walkCaches.pml4eMisses",
            "per4KiB.iotlbMisses", "per4KiB.walks", "per4KiB.pdeCacheMisses", "per4KiB.iommuMemoryReads",
            "contextCache.misses", "latencyNs.translation.mean", "faults.count", "invalidation.descriptors", "invalidation.busyNs",
            "invalidation.iotlbDescriptors", "invalidation.waitDescriptors", "iommu.translations", "iommu.tableFetchReads",
            "smmu.configCache.fetchLatencyNs.mean", "smmu.commandQueue.syncWaitNs.mean", "smmu.commandQueue.busyNs",
            "smmu.commandQueue.byType.tlbiNhVa", "smmu.commandQueue.byType.cmdSync",
        ];
        foreach (var key in filled) Assert.True(D(smmu, key) > 0, $"{key} is 0 on smmuv3");
        // No SMMU meaning (docs/results.md): the CD is part of the configuration cache; VMSAv8-64 at 48 bits has no level −1.
        foreach (var key in new[] { "pasidCache.hits", "pasidCache.misses", "walkCaches.pml5eMisses" }) Assert.Equal(0, D(smmu, key));
        // faults: by SMMU event type, and the sum is the count.
        var reasons = smmu.Where(kv => kv.Key.StartsWith("faults.byReason.", StringComparison.Ordinal)).ToList();
        Assert.Contains(reasons, kv => kv.Key == "faults.byReason.fTranslation");
        Assert.Equal(D(smmu, "faults.count"), reasons.Sum(kv => N(kv.Value)));
        Assert.Equal(D(smmu, "invalidation.iotlbDescriptors"), D(smmu, "smmu.commandQueue.byClass.tlbi"));
        Assert.Equal(D(smmu, "invalidation.waitDescriptors"), D(smmu, "smmu.commandQueue.syncs"));
        // Every key the run wrote is known to sweeps.
        var known = new HashSet<string>(SummaryKeys.Contract);
        foreach (var k in SummaryKeys.SmmuKeys()) known.Add(k);
        foreach (var kv in reasons) Assert.Contains(kv.Key, known);
        Assert.Contains("smmu.vcmdqs.0.byType.tlbiNhVa", known);
    }

    [Fact]
    public void Nested_runs_fill_stage2_reads_and_the_ipa_cache_as_nested_tlb()
    {
        var k = Run("designs/nested.json", Smmu, "simulation:warmupRequests=0", "simulation:maxRequests=1500");
        foreach (var key in new[] { "walks.stage2Reads", "walkCaches.nestedTlbMisses", "smmu.walkCaches.ipaCacheMisses" })
            Assert.True(D(k, key) > 0, $"{key} is 0");
        Assert.Equal(D(k, "smmu.walkCaches.ipaCacheHits"), D(k, "walkCaches.nestedTlbHits"));
    }

    [Fact]
    public void Latency_csv_holds_the_smmus_translation_walk_and_configuration_fetch_histograms()
    {
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("designs/nested.json"), [Smmu, "simulation:warmupRequests=0", "simulation:maxRequests=800"]));
        var kinds = r.LatencyCsv.Split('\n').Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')[0]).ToHashSet();
        Assert.Superset(new HashSet<string> { "translation", "dma", "walk", "walkReads", "configFetch" }, kinds);
        var k = r.Flattened;
        Assert.Equal(k["latencyNs.translation.count"]!.GetValue<long>(), r.Histograms["translation"].Count);
        Assert.Equal(k["walks.count"]!.GetValue<long>(), r.Histograms["walk"].Count);
        Assert.Equal(k["smmu.configCache.fetches"]!.GetValue<long>(), r.Histograms["configFetch"].Count);
        Assert.Equal(N(k["walks.meanLatencyNs"]), Math.Round(r.Histograms["walk"].Mean / 1000.0, 6));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Command_queue_counters_split_main_queue_and_vcmdq_and_are_deterministic(bool hwQueue)
    {
        string[] set = [Smmu, $"translation:viommu:hwQueue={(hwQueue ? "true" : "false")}", "simulation:warmupRequests=100", "simulation:maxRequests=600"];
        string Json()
        {
            var s = (JsonObject)Simulator.Run(Simulator.LoadConfig(Repo.Config("sweeps/architectures-per-request.base.json"), set)).Summary.DeepClone();
            ((JsonObject)s["sim"]!).Remove("wallSeconds");
            ((JsonObject)s["sim"]!).Remove("eventsPerSecond");
            return s.ToJsonString();
        }
        string a = Json();
        Assert.Equal(a, Json());
        var k = SummaryBuilder(a);
        long mainTlbi = k["smmu.commandQueue.byClass.tlbi"]!.GetValue<long>();
        if (hwQueue)
        {
            Assert.Equal(0, mainTlbi); // the guest's invalidations skip the host's main queue
            Assert.True(k["smmu.vcmdqs.0.byClass.tlbi"]!.GetValue<long>() > 0);
            Assert.True(N(k["smmu.vcmdqs.0.syncWaitNs.mean"]) > 0);
        }
        else
        {
            Assert.False(k.ContainsKey("smmu.vcmdqs.0.commands"));
            Assert.True(mainTlbi > 0);
        }
    }

    private static Dictionary<string, JsonNode?> SummaryBuilder(string json)
        => Results.SummaryBuilder.Flatten(JsonNode.Parse(json)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
}
