using System.Text.Json.Nodes;

namespace IommuSim.Cli.Tests;

public class DesignTests
{
    [Theory]
    [InlineData("off")]
    [InlineData("passthrough")]
    [InlineData("single-stage")]
    [InlineData("nested")]
    [InlineData("shadow")]
    public void Every_shipped_design_config_runs_through_the_uapi_layer(string design)
    {
        using var h = new CliHarness();
        string cfg = Path.Combine(CliHarness.RepoRoot, "configs", "designs", $"{design}.json");
        string outDir = Path.Combine(h.Dir, design);
        var (code, _, err) = h.Run("run", cfg, "--out", outDir, "--no-plots", "--set", "simulation:maxRequests=2000", "--set", "simulation:warmupRequests=200");
        Assert.True(code == 0, err);
        var s = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
        Assert.Equal(2000, (long)s["requests"]!["completed"]!);
        Assert.Equal(0, (long)s["faults"]!["count"]!);
        long lookups = (long)s["iotlb"]!["lookups"]!;
        long s1 = (long)s["walks"]!["stage1Reads"]!, s2 = (long)s["walks"]!["stage2Reads"]!;
        switch (design)
        {
            case "off":
            case "passthrough":
                Assert.Equal(0, lookups);
                break;
            case "nested":
                Assert.True(s1 > 0 && s2 > 0, "a nested walk reads both stages");
                break;
            default:
                Assert.True(lookups > 0 && s2 > 0 && s1 == 0);
                break;
        }
    }

    [Theory]
    [InlineData("kernel")]
    [InlineData("iommufd")]
    [InlineData("vfio-container")]
    public void Every_attach_path_gives_the_same_single_stage_results(string via)
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig().Replace("\"via\": \"iommufd\"", $"\"via\": \"{via}\""));
        string outDir = Path.Combine(h.Dir, "o");
        var (code, _, err) = h.Run("run", cfg, "--out", outDir, "--no-plots");
        Assert.True(code == 0, err);
        var s = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
        // Same mappings → same hardware state → same translation behaviour whatever the front end.
        Assert.Equal(ReferenceIotlb.Value, s["iotlb"]!.ToJsonString());
        Assert.Equal(ReferenceWalks.Value, s["walks"]!.ToJsonString());
    }

    private static readonly Lazy<string> ReferenceIotlb = new(() => Reference()["iotlb"]!.ToJsonString());
    private static readonly Lazy<string> ReferenceWalks = new(() => Reference()["walks"]!.ToJsonString());

    private static JsonNode Reference()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig().Replace("\"via\": \"iommufd\"", "\"via\": \"kernel\""));
        string outDir = Path.Combine(h.Dir, "o");
        Assert.Equal(0, h.Run("run", cfg, "--out", outDir, "--no-plots").Code);
        return JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
    }
}
