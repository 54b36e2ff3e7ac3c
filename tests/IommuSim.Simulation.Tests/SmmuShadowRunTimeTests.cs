namespace IommuSim.Simulation.Tests;

/// <summary>
/// translation.design = shadow with run-time mapping on iommu.architecture = smmuv3, from config: the guest maps and
/// unmaps per request, the VMM mirrors each change into its shadow IOAS (IOAS_MAP / IOAS_UNMAP), and an unmap's
/// invalidation is the arm-smmu-v3 driver's (arm_smmu_tlb_inv_range_domain: TLBI_NH_VA + CMD_SYNC; a lazy guest's
/// flush arm_smmu_tlb_inv_context: TLBI_NH_ASID) through the neutral gather.
/// </summary>
public class SmmuShadowRunTimeTests
{
    private static IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonNode?> Run(params string[] sets)
        => Simulator.Run(Simulator.LoadConfig(Repo.Config("designs/shadow.json"),
            ["iommu:architecture=smmuv3", "simulation:warmupRequests=0", "simulation:maxRequests=3000", "workloads:0:mapping=per-request", .. sets])).Flattened;

    [Fact]
    public void Strict_per_request_shadow_uses_no_stale_translation_and_sends_a_tlbi_and_a_sync_per_unmap()
    {
        var k = Run("translation:dmaApi:mode=strict");
        Assert.Equal(3000, k["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
        Assert.Equal(0, k["security.staleTranslationsUsed"]!.GetValue<long>());
        long unmaps = k["dmaApi.unmaps"]!.GetValue<long>();
        Assert.True(unmaps > 2900, $"{unmaps} unmaps"); // a few are in flight at the end
        // 2 KiB buffers: each unmap is one page, so one TLBI_NH_VA (RIL or not) and one CMD_SYNC.
        Assert.InRange(k["smmu.commandQueue.commands"]!.GetValue<long>(), 2 * unmaps - 4, 2 * unmaps + 4);
    }

    [Fact]
    public void Lazy_per_request_shadow_flushes_the_asid_and_may_hit_stale_entries()
    {
        var strict = Run("translation:dmaApi:mode=strict");
        var k = Run("translation:dmaApi:mode=lazy", "translation:dmaApi:flushQueueEntries=64");
        Assert.Equal(3000, k["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
        long flushes = k["dmaApi.flushes"]!.GetValue<long>();
        Assert.True(flushes > 0);
        // Lazy sends one TLBI_NH_ASID + CMD_SYNC per flush instead of a pair per unmap.
        Assert.True(k["smmu.commandQueue.commands"]!.GetValue<long>() < strict["smmu.commandQueue.commands"]!.GetValue<long>() / 4);
        Assert.True(k["throughput.gbps"]!.GetValue<double>() > strict["throughput.gbps"]!.GetValue<double>());
    }
}
