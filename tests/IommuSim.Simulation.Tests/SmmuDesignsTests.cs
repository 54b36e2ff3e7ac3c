namespace IommuSim.Simulation.Tests;

/// <summary>
/// translation.design = nested and shadow on iommu.architecture = smmuv3, from config (configs/designs/*): the VMM's
/// vIOMMU provisioning (nested: a 2-D walk of the guest's VMSAv8-64 stage 1 through the host's stage 2) or its
/// shadow IOAS (a 1-D stage-1 walk) runs the premapped regions without a fault, and the walk reads per TLB miss are
/// what the walk model predicts.
/// </summary>
public class SmmuDesignsTests
{
    private const string Smmu = "iommu:architecture=smmuv3";
    private static readonly string[] Small = ["simulation:warmupRequests=0", "simulation:maxRequests=3000"];

    private static IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonNode?> Run(string design, params string[] sets)
        => Simulator.Run(Simulator.LoadConfig(Repo.Config($"designs/{design}.json"), [Smmu, .. Small, .. sets])).Flattened;

    [Theory]
    [InlineData("nested")]
    [InlineData("shadow")]
    public void Vm_designs_run_premapped_regions_on_the_smmu_without_faults(string design)
    {
        var k = Run(design);
        Assert.Equal(3000, k["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
        Assert.Equal(0, k["faults.count"]!.GetValue<long>());
        Assert.True(k["walks.count"]!.GetValue<long>() > 0);
        // nested walks both stages; the shadow table is one stage-1 domain the VMM fills.
        Assert.True(k["walks.stage1Reads"]!.GetValue<long>() > 0);
        if (design == "nested") Assert.True(k["walks.stage2Reads"]!.GetValue<long>() > 0);
        else Assert.Equal(0, k["walks.stage2Reads"]!.GetValue<long>());
    }

    /// <summary>
    /// Without walk caches a nested walk of a 4-level stage 1 over a 4-level stage 2 reads (4+1)·(4+1) − 1 = 24
    /// descriptors: 4 stage-1 descriptors, each table address and the output IPA translated by a 4-read stage-2
    /// walk (4·4 + 4 = 20). With walk caches (and the IPA cache), a walk of a hot working set reads only the two
    /// leaves. The shadow walk is 1-D: 4 reads without caches. A small excess over the exact count is the walks that
    /// raced a coalesced one (counted once each).
    /// </summary>
    [Theory]
    [InlineData("nested", false, 24.0, 1.03)]
    [InlineData("nested", true, 2.0, 1.10)]   // + the cold walks of the first pages (no warm-up here), which read more
    [InlineData("shadow", false, 4.0, 1.03)]
    [InlineData("shadow", true, 1.0, 1.10)]
    public void Walk_reads_per_miss_are_as_the_model_predicts(string design, bool walkCaches, double expected, double slack)
    {
        var k = Run(design, $"iommu:smmu:walkCache:enabled={walkCaches.ToString().ToLowerInvariant()}", "iommu:smmu:tlb:entries=0");
        double perWalk = k["walks.readsPerWalk"]!.GetValue<double>();
        Assert.InRange(perWalk, expected, expected * slack);
        if (design == "nested" && !walkCaches)
        {
            long s1 = k["walks.stage1Reads"]!.GetValue<long>(), s2 = k["walks.stage2Reads"]!.GetValue<long>();
            Assert.InRange((double)s2 / s1, 4.9, 5.0); // every stage-1 access costs a 4-read stage-2 walk, plus the output IPA's
        }
    }

    [Fact]
    public void A_five_level_guest_stage1_is_refused_naming_the_key()
    {
        var e = Assert.Throws<IommuSim.Simulation.Config.ConfigError>(() => Run("nested", "translation:stage1:levels=5"));
        Assert.Contains(e.Messages, m => m.Contains("translation:stage1:levels = 5", StringComparison.Ordinal));
    }

    /// <summary>IOMMU_HW_QUEUE_ALLOC exists only for a Tegra241 CMDQV vIOMMU (tegra241_cmdqv_init_vintf_user), i.e. nested on SMMUv3.</summary>
    [Theory]
    [InlineData("nested", false, false, "iommu:smmu:tegra241Cmdqv = true")]
    [InlineData("nested", true, false, "iommu:smmu:tegra241Cmdqv = true")]
    [InlineData("shadow", true, true, "only design nested has a vIOMMU")]
    public void A_hardware_queue_without_its_prerequisites_is_refused_naming_the_key(string design, bool smmu, bool cmdqv, string expected)
    {
        var sets = new List<string> { "translation:viommu:hwQueue=true", $"iommu:smmu:tegra241Cmdqv={cmdqv.ToString().ToLowerInvariant()}" };
        if (!smmu) sets.Add("iommu:architecture=vtd");
        var e = Assert.Throws<IommuSim.Simulation.Config.ConfigError>(() =>
            Simulator.LoadConfig(Repo.Config($"designs/{design}.json"), [.. (smmu ? new[] { Smmu } : []), .. sets]));
        Assert.Contains(e.Messages, m => m.Contains("translation:viommu:hwQueue = true", StringComparison.Ordinal) && m.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Nested_with_a_guest_owned_queue_runs_premapped_regions()
    {
        var k = Run("nested", "iommu:smmu:tegra241Cmdqv=true", "translation:viommu:hwQueue=true");
        Assert.Equal(3000, k["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
    }

    private static IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonNode?> PerRequest(bool hwQueue, params string[] sets)
        => Run("nested", ["iommu:smmu:tegra241Cmdqv=true", $"translation:viommu:hwQueue={hwQueue.ToString().ToLowerInvariant()}",
            "workloads:0:mapping=per-request", .. sets]);

    /// <summary>
    /// Per-request mapping with nested translation: the guest unmaps in its stage-1 table and invalidates with one
    /// TLBI_NH_VA + CMD_SYNC. Trapped (arm_vsmmu_cache_invalidate behind IOMMU_HWPT_INVALIDATE) the commands go through
    /// the host's main command queue, after a VM exit and the VMM's ioctl; through the guest's VCMDQ they never reach
    /// the main queue and nothing traps. The SMMU's time for the commands is the same either way, so a strict unmap's
    /// latency differs by exactly translation.dmaApi.vmExitNs + ioctlNs.
    /// </summary>
    [Fact]
    public void Trapped_invalidation_costs_a_vm_exit_and_an_ioctl_more_than_the_guest_queue()
    {
        var trapped = PerRequest(false, "translation:dmaApi:vmExitNs=1500", "translation:dmaApi:ioctlNs=400");
        var queue = PerRequest(true, "translation:dmaApi:vmExitNs=1500", "translation:dmaApi:ioctlNs=400");
        foreach (var k in new[] { trapped, queue })
        {
            Assert.Equal(3000, k["requests.completed"]!.GetValue<long>());
            Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
            Assert.Equal(0, k["security.staleTranslationsUsed"]!.GetValue<long>());
            Assert.True(k["dmaApi.unmaps"]!.GetValue<long>() > 2900); // a few are in flight at the end
        }
        Assert.InRange(trapped["smmu.commandQueue.commands"]!.GetValue<long>(), 2 * trapped["dmaApi.unmaps"]!.GetValue<long>() - 4, 2 * trapped["dmaApi.unmaps"]!.GetValue<long>() + 4); // TLBI_NH_VA + CMD_SYNC per unmap
        Assert.Equal(0, queue["smmu.commandQueue.commands"]!.GetValue<long>());
        double diff = trapped["dmaApi.unmapLatencyNs.mean"]!.GetValue<double>() - queue["dmaApi.unmapLatencyNs.mean"]!.GetValue<double>();
        Assert.Equal(1900, diff, 6);
        Assert.True(queue["throughput.gbps"]!.GetValue<double>() > trapped["throughput.gbps"]!.GetValue<double>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_lazy_guest_flushes_its_asid_either_way(bool hwQueue)
    {
        var k = PerRequest(hwQueue, "translation:dmaApi:mode=lazy", "translation:dmaApi:flushQueueEntries=64");
        Assert.Equal(3000, k["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
        Assert.True(k["dmaApi.flushes"]!.GetValue<long>() > 0);
    }
}
