using IommuSim.Simulation.Config;

namespace IommuSim.Simulation.Tests;

/// <summary>
/// Run-time DMA-API mapping on iommu.architecture = smmuv3, end to end from a config: per-request mapping through
/// the kernel's stage-1 domain or a VFIO program's IOAS, strict (TLBI_NH_VA + CMD_SYNC per unmap,
/// arm_smmu_tlb_inv_range_domain) and lazy (TLBI_NH_ASID + CMD_SYNC per flush-queue flush, arm_smmu_tlb_inv_context),
/// map-per-packet NIC buffers and replayed kernel traces.
/// </summary>
public class SmmuRunTimeMappingTests
{
    private const string Smmu = "iommu:architecture=smmuv3";
    private static readonly string[] Small = ["simulation:warmupRequests=200", "simulation:maxRequests=2000"];

    [Theory]
    [InlineData("strict", "kernel")]
    [InlineData("strict", "iommufd")]
    [InlineData("strict", "vfio-container")]
    [InlineData("lazy", "kernel")]
    [InlineData("lazy", "iommufd")]
    public void Per_request_mapping_runs_on_the_smmu(string mode, string via)
    {
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("sweeps/mapping-cost.base.json"),
            [Smmu, $"translation:dmaApi:mode={mode}", $"devices:0:attach:via={via}", .. Small]));
        var k = r.Flattened;
        Assert.Equal(2000, k["requests.completed"]!.GetValue<long>());
        long unmaps = k["dmaApi.unmaps"]!.GetValue<long>(), syncs = k["smmu.commandQueue.syncs"]!.GetValue<long>();
        long stale = k["security.staleTranslationsUsed"]!.GetValue<long>();
        Assert.True(unmaps >= 2000, $"{unmaps} unmaps");
        if (mode == "strict")
        {
            // One sync per unmap; the last unmap's may still be in the queue when the run ends (one driver CPU).
            Assert.True(syncs >= unmaps - 1, $"strict: {syncs} CMD_SYNCs for {unmaps} unmaps");
            Assert.Equal(0, stale); // every unmap waited for its TLBI: the stray DMAs fault
        }
        else
        {
            long flushes = k["dmaApi.flushes"]!.GetValue<long>();
            Assert.True(flushes > 0 && syncs < unmaps / 2, $"lazy: {flushes} flushes, {syncs} syncs, {unmaps} unmaps");
            Assert.True(stale > 0, "lazy: stray DMAs to unmapped, unflushed IOVAs hit the TLB");
        }
    }

    [Theory]
    [InlineData("nic/nic100-strict-map.json")]   // nic:bufferPolicy = map-per-packet
    [InlineData("traces/kernel-trace-strict.json")]
    [InlineData("traces/kernel-trace-lazy.json")]
    public void Buffer_policies_and_kernel_traces_run_on_the_smmu(string config)
    {
        string[] sets = config.StartsWith("nic/", StringComparison.Ordinal) ? [Smmu, "simulation:maxRequests=3000"] : [Smmu]; // a trace ends its own run
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config(config), sets));
        var k = r.Flattened;
        Assert.True(k["dmaApi.unmaps"]!.GetValue<long>() > 0);
        Assert.True(k["smmu.commandQueue.syncs"]!.GetValue<long>() > 0);
        Assert.True(k["requests.completed"]!.GetValue<long>() > 0);
    }

    [Fact]
    public void Per_request_mapping_on_the_smmu_is_deterministic()
    {
        static string Run()
        {
            var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("sweeps/mapping-cost.base.json"), [Smmu, "translation:dmaApi:mode=lazy", .. Small]));
            var s = (System.Text.Json.Nodes.JsonObject)r.Summary.DeepClone();
            ((System.Text.Json.Nodes.JsonObject)s["sim"]!).Remove("wallSeconds");
            ((System.Text.Json.Nodes.JsonObject)s["sim"]!).Remove("eventsPerSecond");
            return s.ToJsonString();
        }
        Assert.Equal(Run(), Run());
    }
}
