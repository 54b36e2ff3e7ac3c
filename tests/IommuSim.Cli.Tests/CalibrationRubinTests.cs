using System.Globalization;
using System.Text.Json.Nodes;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Results;
using IommuSim.Simulation.Running;

namespace IommuSim.Cli.Tests;

/// <summary>The per-4-KiB IOMMU figures of Rubin et al. (SOSP'24) and the leaf-only (IH) unmap invalidation.</summary>
public class CalibrationRubinTests
{
    private static JsonObject Run(params string[] sets)
    {
        string path = Path.Combine(CliHarness.RepoRoot, "configs", "reference", "rubin-sosp24.json");
        var loaded = ConfigLoader.Load(path, ["simulation:warmupRequests=1000", "simulation:maxRequests=6000", .. sets], useEnvironment: false);
        return SummaryBuilder.Build(SimulationRunner.Run(loaded));
    }

    private static double Num(JsonObject s, string dotted)
    {
        JsonNode? n = s;
        foreach (var part in dotted.Split('.')) n = n![part];
        return double.Parse(n!.ToJsonString(), CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Per_4KiB_figures_are_the_counters_over_the_data_moved()
    {
        var s = Run("workloads:0:nic:queues=5", "translation:dmaApi:invalidationHint=never");
        double units = Num(s, "requests.bytes") / 4096;
        Assert.Equal(Num(s, "walks.memoryReads") / units, Num(s, "per4KiB.iommuMemoryReads"), 4);
        Assert.Equal(Num(s, "walks.count") / units, Num(s, "per4KiB.walks"), 4);
        Assert.Equal(Num(s, "iotlb.misses") / units, Num(s, "per4KiB.iotlbMisses"), 4);
        Assert.Equal(Num(s, "walkCaches.pdeMisses") / units, Num(s, "per4KiB.pdeCacheMisses"), 4);
        // A lookup that misses the PDE cache goes on to the PDPTE cache: per-level misses never grow upwards.
        Assert.True(Num(s, "walkCaches.pdeMisses") >= Num(s, "walkCaches.pdpteMisses"));
        Assert.True(Num(s, "walkCaches.pdpteMisses") >= Num(s, "walkCaches.pml4eMisses"));
        Assert.True(Num(s, "per4KiB.pdeCacheMisses") > 0, "strict unmaps with IH = 0 flush the PDE cache");
    }

    [Fact]
    public void Leaf_only_unmap_invalidations_keep_the_paging_structure_caches()
    {
        // VT-d: with IH = 1 a page-selective IOTLB invalidation leaves the paging-structure caches alone.
        var flush = Run("workloads:0:nic:queues=5", "translation:dmaApi:invalidationHint=never");
        var keep = Run("workloads:0:nic:queues=5", "translation:dmaApi:leafOnlyInvalidation=true");
        Assert.True(Num(flush, "walkCaches.pdeMisses") > 100);
        Assert.Equal(0, Num(keep, "walkCaches.pdeMisses"));
        // One leaf read per walk (± a walk that straddles the end of warm-up).
        Assert.InRange(Num(keep, "walks.memoryReads") - Num(keep, "walks.count"), -2, 2);
        Assert.True(Num(keep, "walks.memoryReads") < Num(flush, "walks.memoryReads"));
    }

    [Fact]
    public void The_kernel_hint_keeps_the_caches_for_unmaps_that_free_no_table()
    {
        // intel_iommu_tlb_sync: ih = list_empty(&gather->freelist). A 4 KiB buffer's unmap (dma_pte_clear_level)
        // never covers a whole table, so with the kernel's rule every unmap here is leaf-only.
        var kernel = Run("workloads:0:nic:queues=5", "translation:dmaApi:invalidationHint=kernel");
        var always = Run("workloads:0:nic:queues=5", "translation:dmaApi:invalidationHint=always");
        Assert.Equal(Num(always, "walkCaches.pdeMisses"), Num(kernel, "walkCaches.pdeMisses"));
        Assert.Equal(Num(always, "walks.memoryReads"), Num(kernel, "walks.memoryReads"));
    }

    [Fact]
    public void Iova_batches_cut_the_unmap_invalidations_and_with_them_the_flushed_pde_entries()
    {
        // nic.iovaBatch = 8: one map, one unmap and one invalidation per 8 ring buffers (Rubin et al. SOSP'24).
        var single = Run("workloads:0:nic:queues=5", "translation:dmaApi:invalidationHint=never");
        var batch = Run("workloads:0:nic:queues=5", "translation:dmaApi:invalidationHint=never", "workloads:0:nic:iovaBatch=8");
        Assert.True(Num(batch, "invalidation.descriptors") < 0.5 * Num(single, "invalidation.descriptors"));
        Assert.True(Num(batch, "walkCaches.pdeMisses") < Num(single, "walkCaches.pdeMisses"));
        // The ACK stream of the base config (nic.txFraction = 0.5) shares the device and its domain.
        Assert.True(Num(single, "devices.nic0.nic.tx.packetsDelivered") > 0);
    }

    [Fact]
    public void Iommu_off_does_no_iommu_work()
    {
        var s = Run("translation:design=off");
        Assert.Equal(0, Num(s, "per4KiB.iotlbMisses"));
        Assert.Equal(0, Num(s, "per4KiB.iommuMemoryReads"));
    }
}
