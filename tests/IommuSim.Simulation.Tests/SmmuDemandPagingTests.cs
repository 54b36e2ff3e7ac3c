using System.Text.Json.Nodes;
using IommuSim.Hardware.PageTables;
using IommuSim.Simulation.Config;
using Xunit.Abstractions;

namespace IommuSim.Simulation.Tests;

/// <summary>
/// Demand paging (devices[].attach.demandPaging) from config on both architectures: an ATS/PRI device's translation
/// request fails, its page request reaches the IOMMU's queue (VT-d page request queue; SMMUv3 PRI queue,
/// arm_smmu_priq_thread → arm_smmu_handle_ppr → iommu_report_device_fault), the kernel's IOPF handler maps the page
/// and answers (intel_iommu_page_response; arm_smmu_page_response → CMD_PRI_RESP), and the device's retry translates.
/// </summary>
public class SmmuDemandPagingTests(ITestOutputHelper output)
{
    private static RunResult Run(string arch, string via, int requests = 2000, params string[] extra)
        => Simulator.Run(Simulator.LoadConfig(Repo.Config("ats/ats-demand-paging.json"),
            [$"iommu:architecture={arch}", $"devices:0:attach:via={via}", $"simulation:maxRequests={requests}", .. PriSeries(arch), .. extra]));

    /// <summary>On SMMUv3 the driver model must report page requests to iopf (the SVA/PRI series): mainline denies them.</summary>
    private static string[] PriSeries(string arch) => arch == "smmuv3" ? ["iommu:smmu:driverPri=iopf"] : [];

    [Theory]
    [InlineData("vtd", "kernel")]
    [InlineData("vtd", "iommufd")]
    [InlineData("smmuv3", "kernel")]
    [InlineData("smmuv3", "iommufd")]
    public void Demand_paged_dma_faults_the_handler_maps_and_answers_and_the_retry_translates(string arch, string via)
    {
        var r = Run(arch, via);
        var k = r.Flattened;
        Assert.Equal(2000, k["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
        long prs = k["ats.pageRequests"]!.GetValue<long>();
        Assert.True(prs > 100, $"page requests {prs}");
        Assert.Equal(prs, k["ats.pageFaultsHandled"]!.GetValue<long>());
        Assert.Equal(prs, k["ats.pageResponses"]!.GetValue<long>());
        Assert.Equal(0, k["ats.pageFaultsRejected"]!.GetValue<long>());
        Assert.Equal(0, k["faults.count"]!.GetValue<long>()); // recoverable: no fault record / event (§3.9.1 on SMMUv3)
        if (arch == "smmuv3")
        {
            var smmu = r.Output.Platform.Smmu!;
            Assert.Equal(prs, smmu.PriQueue.Written);
            Assert.Equal(0, smmu.PriQueue.Lost);
            Assert.Equal(0, smmu.EventQueue.Written);
        }

        // The translation the retried DMA used: every faulted-in page maps into the handler's buffer pool, 4 KiB aligned,
        // and the same page always to the same place.
        var platform = r.Output.Platform;
        var dev = platform.Devices[0];
        var target = r.Output.System.Iopf!.TargetOf(dev)!;
        ulong window = dev.Options.DmaRegions[0].Iova.Value;
        var first = platform.ExecuteDma(dev.RequesterId, null, window + 0x123, 64, Access.Write);
        var again = platform.ExecuteDma(dev.RequesterId, null, window + 0x456, 64, Access.Read);
        Assert.False(first.Faulted);
        Assert.False(again.Faulted);
        Assert.InRange(first.PhysicalAddress, target.BufferBase, target.BufferBase + target.BufferBytes - 1);
        Assert.Equal(0x123UL, first.PhysicalAddress & 0xFFF);
        Assert.Equal(first.PhysicalAddress - 0x123, again.PhysicalAddress - 0x456);
    }

    [Fact]
    public void Fault_to_response_latency_is_the_handling_time_plus_queueing_on_both_architectures()
    {
        // Same config and seed: the same pages fault; each response is posted at least iopfHandlingNs (5 µs) after its request arrived.
        foreach (var arch in new[] { "vtd", "smmuv3" })
        {
            var r = Run(arch, "kernel", 5000);
            var lat = r.Output.System.Iopf!.ResponseLatency;
            Assert.Equal(r.Flattened["ats.pageRequests"]!.GetValue<long>(), lat.Count);
            Assert.True(lat.Min >= 5_000_000, $"{arch}: min {lat.Min} ps");
            output.WriteLine($"{arch}: {lat.Count} faults, request-to-response mean {lat.Mean / 1000:F1} ns, p99 {lat.Percentile(0.99) / 1000.0:F1} ns, " +
                             $"simulated {r.Flattened["sim.simulatedNs"]} ns, {r.Flattened["throughput.gbps"]} Gbit/s");
        }
    }

    [Fact]
    public void Nested_demand_paging_runs_on_the_smmu_through_the_guest_and_back()
    {
        // The guest's handler maps into its stage-1 table (the nested HWPT's CD); every fault pays the VMM round trip.
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("ats/ats-demand-paging-nested.json"),
            ["iommu:architecture=smmuv3", "iommu:smmu:driverPri=iopf", "simulation:maxRequests=2000"]));
        var k = r.Flattened;
        Assert.Equal(2000, k["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
        Assert.Equal(k["ats.pageRequests"]!.GetValue<long>(), k["ats.pageFaultsHandled"]!.GetValue<long>());
        Assert.True(r.Output.System.Iopf!.ResponseLatency.Min >= 5_000_000 + 2 * (1_500_000 + 400_000));
    }

    [Fact]
    public void Demand_paging_on_the_smmu_is_deterministic()
    {
        static string Summary()
        {
            var s = (JsonObject)Run("smmuv3", "kernel", 3000).Summary.DeepClone();
            ((JsonObject)s["sim"]!).Remove("wallSeconds");
            ((JsonObject)s["sim"]!).Remove("eventsPerSecond");
            return s.ToJsonString();
        }
        Assert.Equal(Summary(), Summary());
    }

    [Fact]
    public void Shadow_demand_paging_runs_on_the_smmu_through_the_vmms_shadow_ioas()
    {
        // The VMM's handler maps the faulted page into the guest's table and mirrors it into its shadow IOAS
        // (IOAS_MAP into the arm-smmu-v3 stage-1 domain); the device's retry translates through the shadow table.
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("ats/ats-demand-paging-nested.json"),
            ["iommu:architecture=smmuv3", "iommu:smmu:driverPri=iopf", "translation:design=shadow", "simulation:maxRequests=2000"]));
        var k = r.Flattened;
        Assert.Equal(2000, k["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, k["requests.faulted"]!.GetValue<long>());
        long prs = k["ats.pageRequests"]!.GetValue<long>();
        Assert.True(prs > 100, $"page requests {prs}");
        Assert.Equal(prs, k["ats.pageFaultsHandled"]!.GetValue<long>());
        Assert.Equal(prs, r.Output.Platform.Smmu!.PriQueue.Written);
    }

    /// <summary>Mainline arm-smmu-v3 (arm_smmu_handle_ppr) denies every PRI request: demand paging on it is refused
    /// naming the key and the option that models the SVA/PRI series.</summary>
    [Fact]
    public void Demand_paging_with_mainlines_pri_denial_is_refused_naming_the_key()
    {
        var e = Assert.Throws<ConfigError>(() => Simulator.LoadConfig(Repo.Config("ats/ats-demand-paging.json"), ["iommu:architecture=smmuv3"]));
        Assert.Contains(e.Messages, m => m.Contains("devices:0:attach:demandPaging = true: mainline arm-smmu-v3 answers every PRI page request DENY", StringComparison.Ordinal)
                                         && m.Contains("iommu:smmu:driverPri = iopf", StringComparison.Ordinal));
        var bad = Assert.Throws<ConfigError>(() => Simulator.LoadConfig(Repo.Config("quickstart.json"), ["iommu:architecture=smmuv3", "iommu:smmu:driverPri=maybe"]));
        Assert.Contains(bad.Messages, m => m.Contains("iommu:smmu:driverPri = maybe", StringComparison.Ordinal));
    }
}
