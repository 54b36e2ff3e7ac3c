using System.Text.Json.Nodes;
using IommuSim.Simulation.Config;

namespace IommuSim.Simulation.Tests;

/// <summary>
/// iommu.architecture = smmuv3 from config: validation names the key, the provisioning designs the
/// arm-smmu-v3 driver model supports run end to end (kernel DMA API, iommufd, vfio-container; identity
/// domain for passthrough), and the summary carries the SMMU's figures under the common keys plus smmu.*.
/// </summary>
public class SmmuArchitectureTests
{
    private const string Smmu = "iommu:architecture=smmuv3";
    private static readonly string[] Small = ["simulation:warmupRequests=200", "simulation:maxRequests=3000"];

    [Theory]
    [InlineData("iommu:architecture=arm", "iommu:architecture = arm")]
    [InlineData("iommu:smmu:walkers:count=0", "iommu:smmu:walkers:count = 0")]
    [InlineData("iommu:smmu:tlb:ways=3", "iommu:smmu:tlb")]
    [InlineData("iommu:smmu:queues:commandQueueLog2=30", "iommu:smmu:queues:commandQueueLog2 = 30")]
    public void Bad_smmu_configs_are_refused_naming_the_key(string set, string expected)
    {
        var e = Assert.Throws<ConfigError>(() => Simulator.LoadConfig(Repo.Config("quickstart.json"), [Smmu, set]));
        Assert.Contains(e.Messages, m => m.Contains(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("passthrough", "kernel")]      // arm_smmu_identity_domain: bypass STE
    [InlineData("single-stage", "kernel")]     // the DMA API's default domain: a stage-1 domain (CD + ASID)
    [InlineData("single-stage", "iommufd")]    // IOMMU_DEVICE_ATTACH to an IOAS: an auto HWPT_PAGING domain
    [InlineData("single-stage", "vfio-container")] // VFIO_SET_IOMMU on the iommufd compat container
    public void Designs_run_on_the_smmu_without_faults(string design, string via)
    {
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("quickstart.json"),
            [Smmu, $"translation:design={design}", $"devices:0:attach:via={via}", .. Small]));
        var k = r.Flattened;
        foreach (var key in IommuSim.Simulation.Sweeps.SummaryKeys.Contract) Assert.True(k.ContainsKey(key), $"summary lacks {key}");
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
        Assert.Equal(0, k["faults.count"]!.GetValue<long>());
        Assert.Equal(3000, k["requests.completed"]!.GetValue<long>());
        Assert.True(k["iommu.translations"]!.GetValue<long>() > 0);
        if (design == "passthrough") Assert.Equal(k["iommu.translations"]!.GetValue<long>(), k["iommu.passThrough"]!.GetValue<long>());
        else Assert.True(k["iotlb.lookups"]!.GetValue<long>() > 0);
        Assert.True(k.ContainsKey("smmu.commandQueue.syncs"));
    }

    [Fact]
    public void The_gem5_preset_runs_deterministically_with_smmu_keys()
    {
        static JsonObject Run()
        {
            var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("platforms/gem5-smmuv3.json"), Small));
            var s = (JsonObject)r.Summary.DeepClone();
            ((JsonObject)s["sim"]!).Remove("wallSeconds");
            ((JsonObject)s["sim"]!).Remove("eventsPerSecond");
            return s;
        }
        var a = Run();
        Assert.Equal(a.ToJsonString(), Run().ToJsonString());
        Assert.Equal(2048, a["iotlb"]!["entries"]!.GetValue<int>()); // gem5 tlb_entries
        Assert.True(a["walks"]!["count"]!.GetValue<long>() > 0);     // 16 MiB working set: TLB misses walk
        Assert.True(a["latencyNs"]!["translation"]!["mean"]!.GetValue<double>() > 0);
        Assert.NotNull(a["smmu"]);
    }

    [Fact]
    public void A_vtd_summary_has_no_smmu_section()
    {
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("quickstart.json"), Small));
        Assert.Null(r.Summary["smmu"]);
    }

    [Fact]
    public void A_nic_workload_runs_on_the_smmu()
    {
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("nic/nic100-recycle.json"), [Smmu, "simulation:warmupRequests=0", "simulation:maxRequests=3000"]));
        var k = r.Flattened;
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
        Assert.True(k["iommu.translations"]!.GetValue<long>() > 0);
        Assert.InRange(k["latencyNs.dma.mean"]!.GetValue<double>(), 100, 10_000);
    }

    [Theory]
    [InlineData("iommu:smmu:queues:commandQueueLog2=1")]  // a 2-entry command queue: the driver waits for space
    [InlineData("iommu:smmu:tlb:entries=0")]
    [InlineData("iommu:smmu:configCache:entries=0")]      // every transaction fetches STE and CD
    [InlineData("iommu:smmu:walkCache:enabled=false")]
    [InlineData("iommu:smmu:translationSlots=1")]
    [InlineData("iommu:smmu:walkers:count=1")]
    [InlineData("iommu:smmu:queues:eventQueueLog2=1")]
    public void Edge_geometries_run_to_completion(string set)
    {
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("quickstart.json"), [Smmu, set, "devices:0:attach:via=kernel", .. Small]));
        Assert.Equal(3000, r.Flattened["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, r.Flattened["requests.faulted"]!.GetValue<long>());
    }
}
