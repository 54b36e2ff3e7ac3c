namespace IommuSim.Cli.Tests;

public class ConfigErrorTests
{
    [Theory]
    [InlineData("""{ "name": "x", "iommu": { "iotlb": { "wayz": 4 } } }""", "iommu:iotlb:wayz", "unknown key")]
    [InlineData("""{ "name": "x", "devices": [ { "name": "d", "bdf": "0000:03:00.0", "dmaRegions": [ { "iova": "0x1000", "bytes": "-4KiB" } ] } ] }""", "devices:0:dmaRegions:0:bytes", "negative")]
    [InlineData("""{ "name": "x", "iommu": { "iotlb": { "ways": "four" } } }""", "iommu:iotlb:ways", "expected an integer")]
    [InlineData("""{ "name": "x", "iommu": { "iotlb": { "sets": 16, "ways": 3, "entries": 64 } } }""", "iommu:iotlb:ways = 3", "sets*ways must equal entries (64)")]
    [InlineData("""{ "name": "x", "translation": { "design": "magic" } }""", "translation:design = magic", "allowed values")]
    [InlineData("""{ "name": "x", "iommu": { "iotlb": { "replacement": "mru" } } }""", "iommu:iotlb:replacement", "lru, plru, fifo, random")]
    [InlineData("""{ "name": "x", "pcie": { "lanes": 3 } }""", "pcie:lanes = 3", "allowed values are 1, 2, 4, 8, 16")]
    public void Check_rejects_bad_configs_naming_file_and_key(string json, string key, string what)
    {
        using var h = new CliHarness();
        string path = h.Write("bad.json", json);
        var (code, _, err) = h.Run("check", path);
        Assert.Equal(2, code);
        Assert.Contains(path, err);
        Assert.Contains(key, err);
        Assert.Contains(what, err);
    }

    [Fact]
    public void Malformed_json_names_the_file_and_line()
    {
        using var h = new CliHarness();
        string path = h.Write("broken.json", "{\n  \"name\": \"x\",\n  \"simulation\": { \"seed\": 1,, }\n}\n");
        var (code, _, err) = h.Run("check", path);
        Assert.Equal(2, code);
        Assert.Contains($"{path}:3", err);
        Assert.Contains("malformed JSON", err);
    }

    [Fact]
    public void A_bad_config_writes_no_results_folder()
    {
        using var h = new CliHarness();
        string path = h.Write("bad.json", CliHarness.SmallConfig(name: "shouldnotexist").Replace("\"maxOutstanding\": 16", "\"maxOutstanding\": 16, \"colour\": \"blue\""));
        string outDir = Path.Combine(h.Dir, "out");
        var (code, _, err) = h.Run("run", path, "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains("devices:0:colour", err);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Set_overrides_apply_and_are_checked()
    {
        using var h = new CliHarness();
        string path = h.Write("ok.json", CliHarness.SmallConfig());
        var (code, o, _) = h.Run("check", path, "--set", "iommu:iotlb:ways=8");
        Assert.Equal(0, code);
        Assert.Contains("\"ways\": 8", o);
        var (code2, _, err) = h.Run("check", path, "--set", "iommu:iotlb:bogus=1");
        Assert.Equal(2, code2);
        Assert.Contains("iommu:iotlb:bogus", err);
        var (code3, _, err3) = h.Run("check", path, "--set", "noequals");
        Assert.Equal(2, code3);
        Assert.Contains("KEY=VALUE", err3);
    }

    [Fact]
    public void Missing_file_is_bad_input()
    {
        using var h = new CliHarness();
        var (code, _, err) = h.Run("check", Path.Combine(h.Dir, "nope.json"));
        Assert.Equal(2, code);
        Assert.Contains("file not found", err);
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("run", "--no-such-flag", "x.json")]
    [InlineData()]
    public void Unknown_verbs_and_flags_exit_2_with_usage(params string[] args)
    {
        using var h = new CliHarness();
        var (code, _, err) = h.Run(args);
        Assert.Equal(2, code);
        Assert.Contains("usage: iommusim", err);
    }

    [Theory]
    [InlineData("--timeline", "--quiet")]
    [InlineData("--record-trace", "--no-plots")]
    [InlineData("--out", "--quiet")]
    public void An_option_given_as_another_options_value_exits_2_and_writes_nothing(string option, string swallowed)
    {
        using var h = new CliHarness();
        string outDir = Path.Combine(h.Dir, "out"), config = h.Write("c.json", CliHarness.SmallConfig());
        var args = option == "--out"
            ? new[] { "run", config, option, swallowed }
            : new[] { "run", config, "--out", outDir, option, swallowed };
        var (code, _, err) = h.Run(args);
        Assert.Equal(2, code);
        Assert.Contains($"{option} {swallowed}: expected a value, got the option {swallowed}", err);
        // Before the check the swallowed name became the timeline file, the trace file or the results folder, in the
        // working directory; and the run itself wrote its results folder.
        Assert.False(Path.Exists(swallowed));
        if (option != "--out") Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Shipped_configs_all_validate()
    {
        using var h = new CliHarness();
        var configs = Directory.GetFiles(Path.Combine(CliHarness.RepoRoot, "configs"), "*.json", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}sweeps{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        Assert.NotEmpty(configs);
        foreach (var c in configs)
        {
            var (code, _, err) = h.Run("check", c);
            Assert.True(code == 0, $"{c}: {err}");
        }
    }
}
