using System.Text.Json.Nodes;
using IommuSim.Simulation.Results;

namespace IommuSim.Cli.Tests;

public class RunTests
{
    private static string WithoutWallClock(string summaryJson)
    {
        var o = JsonNode.Parse(summaryJson)!.AsObject();
        var sim = o["sim"]!.AsObject();
        sim.Remove("wallSeconds");
        sim.Remove("eventsPerSecond");
        return o.ToJsonString();
    }

    [Theory]
    [InlineData("single-stage")]
    [InlineData("nested")]
    public void Same_config_and_seed_give_byte_identical_summaries(string design)
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig(design: design));
        string a = Path.Combine(h.Dir, "a"), b = Path.Combine(h.Dir, "b");
        Assert.Equal(0, h.Run("run", cfg, "--out", a, "--no-plots").Code);
        Assert.Equal(0, h.Run("run", cfg, "--out", b, "--no-plots").Code);
        string sa = File.ReadAllText(Path.Combine(a, "summary.json")), sb = File.ReadAllText(Path.Combine(b, "summary.json"));
        Assert.Equal(WithoutWallClock(sa), WithoutWallClock(sb));
        // Everything but the two wall-clock lines is byte-identical.
        var la = sa.Split('\n').Where(l => !l.Contains("wallSeconds") && !l.Contains("eventsPerSecond"));
        var lb = sb.Split('\n').Where(l => !l.Contains("wallSeconds") && !l.Contains("eventsPerSecond"));
        Assert.Equal(la, lb);
        Assert.Equal(File.ReadAllText(Path.Combine(a, "config.resolved.json")), File.ReadAllText(Path.Combine(b, "config.resolved.json")));
    }

    [Fact]
    public void Different_seeds_give_different_results_and_hashes()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig());
        string a = Path.Combine(h.Dir, "a"), b = Path.Combine(h.Dir, "b");
        Assert.Equal(0, h.Run("run", cfg, "--out", a, "--no-plots").Code);
        Assert.Equal(0, h.Run("run", cfg, "--out", b, "--no-plots", "--seed", "8").Code);
        var sa = JsonNode.Parse(File.ReadAllText(Path.Combine(a, "summary.json")))!;
        var sb = JsonNode.Parse(File.ReadAllText(Path.Combine(b, "summary.json")))!;
        Assert.NotEqual(sa["configHash"]!.ToString(), sb["configHash"]!.ToString());
        Assert.Equal(8, (int)sb["seed"]!);
    }

    [Fact]
    public void Summary_has_every_required_key()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig(design: "nested"));
        string a = Path.Combine(h.Dir, "a");
        Assert.Equal(0, h.Run("run", cfg, "--out", a, "--no-plots").Code);
        var keys = SummaryBuilder.Flatten(JsonNode.Parse(File.ReadAllText(Path.Combine(a, "summary.json")))).Select(k => k.Key).ToHashSet();
        string[] required =
        [
            "name", "seed", "configHash", "sim.events", "sim.simulatedNs", "sim.wallSeconds", "sim.eventsPerSecond",
            "requests.issued", "requests.completed", "requests.faulted", "requests.bytes", "throughput.gbps",
            "iotlb.lookups", "iotlb.hits", "iotlb.misses", "iotlb.missRate", "iotlb.evictions", "iotlb.invalidatedEntries",
            "walks.count", "walks.coalesced", "walks.memoryReads", "walks.stage1Reads", "walks.stage2Reads",
            "walkCaches.hits", "walkCaches.misses", "contextCache.hits", "contextCache.misses", "pasidCache.hits", "pasidCache.misses",
            "latencyNs.translation.mean", "latencyNs.translation.p50", "latencyNs.translation.p90", "latencyNs.translation.p99",
            "latencyNs.translation.p999", "latencyNs.translation.max", "latencyNs.dma.mean", "latencyNs.dma.p99",
            "faults.count", "invalidation.descriptors", "invalidation.busyNs", "security.staleTranslationsUsed",
            "pcie.tlps", "pcie.linkUtilization", "devices.dev0.completed", "devices.dev0.latencyNs.p99",
        ];
        foreach (var k in required) Assert.Contains(k, keys);
        var s = JsonNode.Parse(File.ReadAllText(Path.Combine(a, "summary.json")))!;
        Assert.Equal(3000, (long)s["requests"]!["completed"]!);
        Assert.True((long)s["walks"]!["stage1Reads"]! > 0 && (long)s["walks"]!["stage2Reads"]! > 0);
        Assert.True(File.Exists(Path.Combine(a, "latency.csv")));
        Assert.True(File.Exists(Path.Combine(a, "config.resolved.json")));
        Assert.DoesNotContain(Directory.EnumerateDirectories(h.Dir), d => Path.GetFileName(d).StartsWith(".a.tmp-", StringComparison.Ordinal));
    }
}
