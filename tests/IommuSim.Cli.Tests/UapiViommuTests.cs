using System.Text.RegularExpressions;

namespace IommuSim.Cli.Tests;

/// <summary>`iommusim uapi configs/uapi/vmm-nested-smmuv3.uapi`: the VMM flow of the iommufd vIOMMU path on an SMMUv3
/// (docs/viommu.md), checked on its output.</summary>
public partial class UapiViommuTests
{
    [GeneratedRegex(@"^(\d+): (\S+) -> (.*)$", RegexOptions.Multiline)]
    private static partial Regex ResultLine();

    private static List<(string Call, string Result)> Results(string output)
        => ResultLine().Matches(output).Select(m => (m.Groups[2].Value, m.Groups[3].Value)).ToList();

    private static int WalkReads(string result) => int.Parse(Regex.Match(result, @"walk_reads=(\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void Vmm_nested_smmuv3_script_runs_the_whole_flow()
    {
        using var h = new CliHarness();
        var (code, o, err) = h.Run("uapi", Path.Combine(CliHarness.RepoRoot, "configs", "uapi", "vmm-nested-smmuv3.uapi"));
        Assert.True(code == 0, o + err);
        Assert.DoesNotContain("MISMATCH", o);
        var r = Results(o);
        var dmas = r.Where(x => x.Call == "DMA").Select(x => x.Result).ToList();
        // The first DMA walks both stages (the guest's CD and stage-1 tables are IPAs translated by stage 2): more
        // descriptor reads than a 4-level one-stage walk; the next one hits the TLB although the guest unmapped.
        Assert.StartsWith("OK", dmas[0]);
        Assert.True(WalkReads(dmas[0]) > 4, dmas[0]);
        Assert.StartsWith("OK", dmas[1]);
        Assert.Equal(0, WalkReads(dmas[1]));
        Assert.StartsWith("FAULT", dmas[2]);                                      // after TLBI_NH_VA through the vIOMMU
        var reads = r.Where(x => x.Call == "VEVENTQ_READ").Select(x => x.Result).ToList();
        Assert.Contains("sid=0x18", reads[0]);                                   // the vSID, not the StreamID 0x300
        Assert.Contains("lost_events=3", reads[1]);
        Assert.Contains(r, x => x.Call == "VIOMMU_ALLOC" && x.Result.Contains("out_vintf_mmap_length=0x10000", StringComparison.Ordinal));
        int submit = r.FindIndex(x => x.Call == "VCMDQ_SUBMIT");
        Assert.StartsWith("OK consumed=2 sim_ns=", r[submit].Result);
        Assert.StartsWith("FAULT", r[submit + 1].Result);                          // the guest's own queue invalidated it
    }

    /// <summary>Same script, same output (simulated time and walks are deterministic).</summary>
    [Fact]
    public void Vmm_nested_smmuv3_script_is_deterministic()
    {
        using var h = new CliHarness();
        string path = Path.Combine(CliHarness.RepoRoot, "configs", "uapi", "vmm-nested-smmuv3.uapi");
        var (_, a, _) = h.Run("uapi", path);
        var (_, b, _) = h.Run("uapi", path);
        Assert.Equal(a, b);
    }
}
