using System.Text.Json.Nodes;

namespace IommuSim.Cli.Tests;

public class OpenLoopTests
{
    private static JsonNode RunWith(CliHarness h, string arrival, double rateMrps, string tag)
    {
        string cfg = h.Write($"{tag}.json", CliHarness.SmallConfig(name: tag, workload:
            $$"""{ "device": "dev0", "type": "random", "bytes": 256, "readFraction": 0.5, "workingSetBytes": "4MiB", "arrival": "{{arrival}}", "rateMrps": {{rateMrps}} }"""));
        string outDir = Path.Combine(h.Dir, tag);
        var (code, _, err) = h.Run("run", cfg, "--out", outDir, "--no-plots");
        Assert.True(code == 0, err);
        return JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
    }

    [Theory]
    [InlineData("poisson")]
    [InlineData("constant")]
    [InlineData("bursty")]
    public void Open_loop_runs_are_deterministic(string arrival)
    {
        using var h = new CliHarness();
        var a = RunWith(h, arrival, 5, "a");
        var b = RunWith(h, arrival, 5, "b");
        Assert.Equal(a["latencyNs"]!.ToJsonString(), b["latencyNs"]!.ToJsonString());
        Assert.Equal(a["sim"]!["events"]!.ToJsonString(), b["sim"]!["events"]!.ToJsonString());
    }

    [Fact]
    public void Offered_load_sets_the_request_rate_and_queueing_raises_latency()
    {
        using var h = new CliHarness();
        var low = RunWith(h, "poisson", 2, "low");
        var high = RunWith(h, "poisson", 60, "high");
        double lowMrps = (double)low["throughput"]!["mrps"]!;
        Assert.InRange(lowMrps, 1.8, 2.2); // the device keeps up with 2 Mrps
        Assert.True((double)high["throughput"]!["mrps"]! > lowMrps * 5);
        Assert.True((double)high["latencyNs"]!["dma"]!["p99"]! > (double)low["latencyNs"]!["dma"]!["p99"]!);
    }
}
