using System.Text.Json.Nodes;
using IommuSim.Cli.Plots;

namespace IommuSim.Cli.Tests.Safety;

/// <summary>Issue 13, item 6: what a newcomer hit in check's output and the run plots.</summary>
public class NewcomerTests
{
    [Fact]
    public void Check_prints_only_keys_that_can_be_set_and_numbers_as_numbers()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig());
        var (code, output, err) = h.Run("check", cfg);
        Assert.True(code == 0, err);
        string json = output[..output.LastIndexOf("# config ok", StringComparison.Ordinal)];
        Assert.DoesNotContain("requesterId", json, StringComparison.Ordinal);
        var root = JsonNode.Parse(json)!;
        var bytes = root["workloads"]![0]!["bytes"]!.AsValue();
        Assert.Equal(System.Text.Json.JsonValueKind.Number, bytes.GetValueKind());
        Assert.Equal(64, bytes.GetValue<long>());
        Assert.Equal("512KiB", root["workloads"]![0]!["workingSetBytes"]!.GetValue<string>());

        // What check prints is a config: fed back, it gives the same resolved config.
        string again = h.Write("again.json", json);
        var (code2, output2, _) = h.Run("check", again);
        Assert.Equal(0, code2);
        Assert.Equal(json, output2[..output2.LastIndexOf("# config ok", StringComparison.Ordinal)]);
    }

    [Fact]
    public void The_walk_reads_title_counts_walks_and_reads_as_the_summary_does()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig(design: "nested"));
        string o = Path.Combine(h.Dir, "o");
        Assert.Equal(0, h.Run("run", cfg, "--out", o, "--no-plots", "--set", "simulation:warmupRequests=0").Code);
        var s = JsonNode.Parse(File.ReadAllText(Path.Combine(o, "summary.json")))!;
        long walks = (long)s["walks"]!["count"]!, reads = (long)s["walks"]!["memoryReads"]!;
        Assert.True(walks > 0 && reads > walks);
        var buckets = RunPlots.ReadLatency(Path.Combine(o, "latency.csv")).Where(b => b.Kind == "walkReads").ToList();
        string title = RunPlots.WalkReadsTitle(buckets);
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"({walks:N0} walks, {reads:N0} reads, mean "), title, StringComparison.Ordinal);
    }
}
