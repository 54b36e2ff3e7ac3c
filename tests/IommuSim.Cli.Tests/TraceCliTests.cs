using System.Text.Json.Nodes;

namespace IommuSim.Cli.Tests;

public class TraceCliTests
{
    private const string TraceWorkload = """{ "device": "dev0", "type": "trace", "path": "t.csv" }""";

    [Fact]
    public void A_trace_replays_through_the_cli()
    {
        using var h = new CliHarness();
        h.Write("t.csv", "time_ns,device,pasid,iova,bytes,op\n# comment\n\n,dev0,,0x100000000,64,W\n,dev0,,0x100001000,4096,R\n2000,dev0,,0x100002040,128,W\n");
        string cfg = h.Write("c.json", CliHarness.SmallConfig(workload: TraceWorkload, maxRequests: 0).Replace("\"warmupRequests\": 100", "\"warmupRequests\": 0"));
        string outDir = Path.Combine(h.Dir, "out");
        var (code, _, err) = h.Run("run", cfg, "--out", outDir, "--no-plots");
        Assert.True(code == 0, err);
        var s = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
        Assert.Equal(3, (long)s["requests"]!["completed"]!);
        Assert.Equal(64 + 4096 + 128, (long)s["requests"]!["bytes"]!);
        Assert.True((double)s["sim"]!["simulatedNs"]! >= 2000);
    }

    [Theory]
    [InlineData("time_ns,device,pasid,iova,bytes,op\n,dev0,,0x100000000,64,X\n", 2, "op")]
    [InlineData("time_ns,device,pasid,iova,bytes,op\n,dev0,,0x100000000,64,W\n,dev0,,zzz,64,W\n", 3, "iova")]
    [InlineData("time_ns,device,pasid,iova,bytes,op\n,nic9,,0x100000000,64,W\n", 2, "unknown device")]
    [InlineData("time_ns,device,pasid,iova,bytes,op\n,dev0,,0x100000000,0,W\n", 2, "bytes")]
    [InlineData("time_ns,device,pasid,iova,bytes,op\n100,dev0,,0x100000000,64,W\n50,dev0,,0x100000000,64,W\n", 3, "backwards")]
    [InlineData("iova,bytes\n", 1, "header")]
    [InlineData("time_ns,device,pasid,iova,bytes,op\n,dev0,0x100000000,64,W\n", 2, "6 comma-separated columns")]
    public void A_malformed_trace_line_exits_2_with_file_and_line(string trace, int line, string what)
    {
        using var h = new CliHarness();
        string tracePath = h.Write("t.csv", trace);
        string cfg = h.Write("c.json", CliHarness.SmallConfig(workload: TraceWorkload, maxRequests: 0));
        string outDir = Path.Combine(h.Dir, "out");
        var (code, _, err) = h.Run("run", cfg, "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains($"t.csv:{line}:", err);
        Assert.Contains(what, err);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void A_recorded_trace_replays_to_identical_results()
    {
        using var h = new CliHarness();
        string synth = h.Write("synth.json", CliHarness.SmallConfig(name: "synth", maxRequests: 2000).Replace("\"warmupRequests\": 100", "\"warmupRequests\": 0"));
        string trace = Path.Combine(h.Dir, "rec.csv");
        string a = Path.Combine(h.Dir, "a"), b = Path.Combine(h.Dir, "b");
        Assert.Equal(0, h.Run("run", synth, "--out", a, "--no-plots", "--record-trace", trace).Code);
        string replay = h.Write("replay.json", CliHarness.SmallConfig(name: "synth", maxRequests: 2000, workload: """{ "device": "dev0", "type": "trace", "path": "rec.csv" }""").Replace("\"warmupRequests\": 100", "\"warmupRequests\": 0"));
        var (code, _, err) = h.Run("run", replay, "--out", b, "--no-plots");
        Assert.True(code == 0, err);
        var sa = JsonNode.Parse(File.ReadAllText(Path.Combine(a, "summary.json")))!;
        var sb = JsonNode.Parse(File.ReadAllText(Path.Combine(b, "summary.json")))!;
        foreach (var key in new[] { "requests", "iotlb", "walks", "latencyNs", "throughput" })
            Assert.Equal(sa[key]!.ToJsonString(), sb[key]!.ToJsonString());
    }
}
