using System.Text.Json.Nodes;

namespace IommuSim.Cli.Tests;

/// <summary>
/// `iommusim run` of the demand-paging configs with `--set iommu:architecture=smmuv3`: the SMMU's PRI queue feeds the
/// kernel's IOPF handler (arm_smmu_priq_thread → iommu_report_device_fault) and CMD_PRI_RESP resumes the device
/// (arm_smmu_page_response), with the same counters as VT-d, for every design.
/// </summary>
public class SmmuDemandPagingCliTests
{
    [Theory]
    [InlineData("ats-demand-paging.json")]
    [InlineData("ats-demand-paging-nested.json")]
    public void A_demand_paging_config_runs_on_the_smmu(string config)
    {
        using var h = new CliHarness();
        string outDir = Path.Combine(h.Dir, "o");
        var (code, _, err) = h.Run("run", Path.Combine(CliHarness.RepoRoot, "configs", "ats", config), "--out", outDir, "--no-plots",
            "--set", "iommu:architecture=smmuv3", "--set", "iommu:smmu:driverPri=iopf", "--set", "simulation:maxRequests=3000");
        Assert.True(code == 0, err);
        var s = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
        Assert.Equal(3000, (long)s["requests"]!["completed"]!);
        Assert.Equal(0, (long)s["requests"]!["faulted"]!);
        long prs = (long)s["ats"]!["pageRequests"]!;
        Assert.True(prs > 100, $"{prs} page requests");
        Assert.Equal(prs, (long)s["ats"]!["pageFaultsHandled"]!);
        Assert.Equal(prs, (long)s["smmu"]!["priQueue"]!["records"]!);
        Assert.Equal(0, (long)s["faults"]!["count"]!);
    }

    [Fact]
    public void The_iopf_smmuv3_script_answers_faults_through_the_fault_fd()
    {
        // iommufd_fault_iopf_handler queues the PRI request; iommufd_fault_fops_write → iommu_page_response →
        // arm_smmu_page_response (CMD_PRI_RESP): Success lets the retried DMA complete, Invalid (Deny) fails it.
        using var h = new CliHarness();
        var (code, o, err) = h.Run("uapi", Path.Combine(CliHarness.RepoRoot, "configs", "uapi", "iopf-smmuv3.uapi"));
        Assert.True(code == 0, o + err);
        Assert.DoesNotContain("MISMATCH", o);
        Assert.Contains("20: DMA -> OK pa=", o);
        Assert.Contains("26: DMA -> FAULT reason=pageRequestQueued", o);
        var (again, o2, _) = h.Run("uapi", Path.Combine(CliHarness.RepoRoot, "configs", "uapi", "iopf-smmuv3.uapi"));
        Assert.Equal(0, again);
        Assert.Equal(o, o2); // deterministic
    }

    [Fact]
    public void Demand_paging_with_shadow_on_the_smmu_runs()
    {
        using var h = new CliHarness();
        string outDir = Path.Combine(h.Dir, "o");
        var (code, _, err) = h.Run("run", Path.Combine(CliHarness.RepoRoot, "configs", "ats", "ats-demand-paging-nested.json"), "--out", outDir,
            "--no-plots", "--quiet", "--set", "iommu:architecture=smmuv3", "--set", "iommu:smmu:driverPri=iopf", "--set", "translation:design=shadow", "--set", "simulation:maxRequests=2000");
        Assert.True(code == 0, err);
        var s = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
        Assert.True(s["ats"]!["pageFaultsHandled"]!.GetValue<long>() > 0);
        Assert.Equal(0, s["requests"]!["faulted"]!.GetValue<long>());
    }
}
