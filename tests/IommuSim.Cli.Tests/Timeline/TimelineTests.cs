using System.Text.Json.Nodes;
using IommuSim.Cli.Timeline;

namespace IommuSim.Cli.Tests.Timeline;

/// <summary><c>iommusim run --timeline</c>: a valid, bounded trace-event file that does not change the results.</summary>
public class TimelineTests
{
    private static string Design(string design) => Path.Combine(CliHarness.RepoRoot, "configs", "designs", $"{design}.json");

    private static (TraceFile Trace, JsonNode Summary, string Out) Run(CliHarness h, string config, string tag, params string[] extra)
    {
        string outDir = Path.Combine(h.Dir, tag), trace = Path.Combine(h.Dir, tag + ".trace.json");
        var (code, stdout, err) = h.Run(["run", config, "--out", outDir, "--no-plots", "--timeline", trace, .. extra]);
        Assert.True(code == 0, err);
        Assert.Contains($"-> {trace}", stdout);
        return (new TraceFile(trace), JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!, outDir);
    }

    [Fact]
    public void Quickstart_timeline_is_valid_trace_event_json_with_a_track_per_block()
    {
        using var h = new CliHarness();
        var (t, _, _) = Run(h, Path.Combine(CliHarness.RepoRoot, "configs", "quickstart.json"), "qs",
            "--set", "simulation:maxRequests=4000");
        foreach (var block in new[] { "device dev0", "PCIe link dev0", "root port / root complex", "IOMMU pipeline", "IOMMU page walkers",
                     "invalidation queue", "memory", "driver CPUs", "VMM" })
            Assert.Contains(t.Processes.Values, p => p.StartsWith(block, StringComparison.Ordinal));
        int link = t.Pid("PCIe link dev0");
        Assert.Equal("upstream (device to root port)", t.Threads[(link, 1)]);
        Assert.Equal("downstream (root port to device)", t.Threads[(link, 2)]);
        // The default cap bounds the file.
        Assert.Equal(TimelineWindow.DefaultMaxRequests, t.Requests.Count());
        Assert.Equal("true", t.OtherData.GetProperty("truncatedByRequestCap").GetString());
        Assert.Equal("0", t.OtherData.GetProperty("phaseAnomalies").GetString());
        Assert.Contains(t.Slices, e => e.Pid == link && e.Tid == 1 && e.Name == "MRd/Msg");
        Assert.Contains(t.Slices, e => e.Pid == link && e.Tid == 2 && e.Name == "CplD");
        Assert.Contains(t.Slices, e => e.Pid == t.Pid("IOMMU page walkers") && e.Name == "walk");
        Assert.Contains(t.Slices, e => e.Pid == t.Pid("memory"));
        t.AssertSlicesNest();
        t.AssertPhasesTileRequests();
        t.AssertFlows();
    }

    /// <summary>With every request on the timeline, the request slices are exactly the run's DMA latencies.</summary>
    [Theory]
    [InlineData("single-stage", "premapped", "strict")]
    [InlineData("nested", "per-request", "strict")]
    [InlineData("shadow", "per-request", "lazy")]
    public void Request_slices_add_up_to_the_measured_latencies(string design, string mapping, string mode)
    {
        using var h = new CliHarness();
        var (t, s, _) = Run(h, Design(design), design, "--set", "simulation:maxRequests=800", "--set", "simulation:warmupRequests=0",
            "--set", $"workloads:0:mapping={mapping}", "--set", $"translation:dmaApi:mode={mode}", "--timeline-max-requests", "100000");
        t.AssertSlicesNest();
        t.AssertPhasesTileRequests();
        t.AssertFlows();
        var requests = t.Requests.ToList();
        Assert.Equal((long)s["requests"]!["completed"]!, requests.Count);
        double meanNs = requests.Average(r => r.DurPs) / 1000.0;
        Assert.Equal((double)s["latencyNs"]!["dma"]!["mean"]!, meanNs, 3);
        if (mapping == "per-request")
        {
            int cpus = t.Pid("driver CPUs"), vmm = t.Pid("VMM");
            Assert.Equal((long)s["dmaApi"]!["maps"]!, t.Slices.Count(e => e.Pid == cpus && e.Name == "dma_map"));
            // Nested traps each invalidation to the VMM; shadow also each map.
            Assert.Contains(t.Events, e => e.Pid == vmm && e.Ph == "i" && e.Name == "VM exit");
            Assert.Contains(t.Slices, e => e.Pid == vmm && e.Name == "trapped invalidation");
            Assert.Equal(design == "shadow", t.Slices.Any(e => e.Pid == vmm && e.Name == "trapped map (caching mode)"));
            Assert.Contains(t.Slices, e => e.Pid == t.Pid("invalidation queue") && e.Name == "wait");
        }
    }

    [Theory]
    [InlineData("single-stage", "strict")]
    [InlineData("nested", "lazy")]
    public void Results_are_byte_identical_with_and_without_a_timeline(string design, string mode)
    {
        using var h = new CliHarness();
        string[] set = ["--set", "simulation:maxRequests=3000", "--set", "workloads:0:mapping=per-request",
            "--set", "workloads:0:strayDmaFraction=0.2", "--set", $"translation:dmaApi:mode={mode}"];
        string plain = Path.Combine(h.Dir, "plain");
        Assert.Equal(0, h.Run(["run", Design(design), "--out", plain, "--no-plots", .. set]).Code);
        var (_, s, traced) = Run(h, Design(design), "traced", set);
        static IEnumerable<string> Lines(string dir) => File.ReadAllLines(Path.Combine(dir, "summary.json"))
            .Where(l => !l.Contains("\"wallSeconds\"", StringComparison.Ordinal) && !l.Contains("\"eventsPerSecond\"", StringComparison.Ordinal));
        Assert.Equal(Lines(plain), Lines(traced));
        // Lazy mode serves stray DMAs from stale entries: the tracker (now an observer) still counts them.
        if (mode == "lazy") Assert.True((long)s["security"]!["staleTranslationsUsed"]! > 0);
    }

    [Fact]
    public void Window_bounds_the_timeline_in_simulated_time()
    {
        using var h = new CliHarness();
        var (t, _, _) = Run(h, CliHarness.SmallConfig() is var c ? h.Write("c.json", c) : "", "w", "--timeline-window", "5us..8us");
        Assert.NotEmpty(t.Requests);
        Assert.All(t.Requests, r => Assert.InRange(r.TsPs, 5_000_000, 7_999_999));
        // Link and invalidation activity is cut at the window; a recorded request is followed to its completion, with its walks.
        Assert.All(t.Slices.Where(e => e.Cat is "invalidation" || e.Pid == t.Pid("PCIe link")), e => Assert.InRange(e.TsPs, 5_000_000, 7_999_999));
        long lastCompletion = t.Requests.Max(r => r.TsPs + r.DurPs);
        Assert.All(t.Slices.Where(e => e.Cat == "walk"), e => Assert.InRange(e.TsPs, 5_000_000, lastCompletion));
        Assert.Equal("5us..8us", t.OtherData.GetProperty("window").GetString());
        t.AssertSlicesNest();
        t.AssertPhasesTileRequests();
    }

    [Fact]
    public void A_cold_nested_miss_shows_its_24_walk_reads_inside_the_walk()
    {
        using var h = new CliHarness();
        var (t, _, _) = Run(h, Design("nested"), "nested", "--set", "iommu:walkCaches:enabled=false", "--set", "simulation:maxRequests=300",
            "--timeline-max-requests", "200");
        int walkers = t.Pid("IOMMU page walkers");
        var walk = t.Slices.First(e => e.Pid == walkers && e.Name == "walk" && e.Args.GetProperty("reads").GetInt32() == 24);
        var reads = t.Slices.Where(e => e.Pid == walkers && e.Tid == walk.Tid && e.Name.EndsWith(" read", StringComparison.Ordinal)
            && e.TsPs >= walk.TsPs && e.TsPs + e.DurPs <= walk.TsPs + walk.DurPs).ToList();
        Assert.Equal(24, reads.Count);
        Assert.Equal(5, reads.Count(r => r.Name.StartsWith("S1 ", StringComparison.Ordinal)) + 1); // 4 stage-1 reads...
        Assert.Equal(20, reads.Count(r => r.Name.StartsWith("S2 ", StringComparison.Ordinal)));   // ...and 5 stage-2 walks of 4
        var request = t.Requests.First(r => r.Args.GetProperty("walkReads").GetInt32() == 24);
        Assert.Contains(t.Slices, p => p.Cat == "dma.phase" && p.Name == "page walk" && p.Pid == request.Pid && p.Tid == request.Tid
            && p.TsPs >= request.TsPs && p.TsPs + p.DurPs <= request.TsPs + request.DurPs);
    }

    [Theory]
    [InlineData("10us..20us", 10_000_000L, 20_000_000L)]
    [InlineData("..5ns", 0L, 5_000L)]
    [InlineData("1.5us..", 1_500_000L, long.MaxValue)]
    [InlineData("0ps..1ms", 0L, 1_000_000_000L)]
    [InlineData(" 2 us .. 3 us ", 2_000_000L, 3_000_000L)]
    public void Window_syntax(string text, long start, long end)
    {
        var w = TimelineWindow.Parse(text, null);
        Assert.Equal((start, end, TimelineWindow.DefaultMaxRequests), (w.StartPs, w.EndPs, w.MaxRequests));
    }

    [Theory]
    [InlineData("--timeline-window", "10us", "expected START..END")]
    [InlineData("--timeline-window", "10..20us", "'10' is not a time")]
    [InlineData("--timeline-window", "20us..10us", "the end must be after the start")]
    [InlineData("--timeline-window", "-1us..2us", "is not a time")]
    [InlineData("--timeline-window", "1h..2h", "is not a time")]
    [InlineData("--timeline-max-requests", "0", "must be at least 1")]
    public void Bad_timeline_arguments_are_exit_2_and_nothing_is_written(string option, string value, string message)
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig()), outDir = Path.Combine(h.Dir, "out"), trace = Path.Combine(h.Dir, "t.json");
        var (code, _, err) = h.Run("run", cfg, "--out", outDir, "--no-plots", "--timeline", trace, option, value);
        Assert.Equal(2, code);
        Assert.Contains(option, err);
        Assert.Contains(message, err);
        Assert.False(Directory.Exists(outDir));
        Assert.Empty(Directory.GetFiles(h.Dir, "t.json*"));
    }

    [Fact]
    public void Window_without_a_timeline_file_is_exit_2()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig()), outDir = Path.Combine(h.Dir, "out");
        var (code, _, err) = h.Run("run", cfg, "--out", outDir, "--no-plots", "--timeline-window", "1us..2us");
        Assert.Equal(2, code);
        Assert.Contains("--timeline-window needs --timeline FILE", err);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Timeline_plot_draws_the_request_with_the_most_walk_reads()
    {
        using var h = new CliHarness();
        string trace = Path.Combine(h.Dir, "n.trace.json"), png = Path.Combine(h.Dir, "n.png");
        Run(h, Design("nested"), "n", "--set", "iommu:walkCaches:enabled=false", "--set", "simulation:maxRequests=200", "--timeline-max-requests", "50");
        var (code, stdout, err) = h.Run("timeline-plot", trace, png);
        Assert.True(code == 0, err);
        var bytes = File.ReadAllBytes(png);
        Assert.True(bytes.Length > 10_000 && bytes[1] == (byte)'P' && bytes[2] == (byte)'N' && bytes[3] == (byte)'G');
        Assert.Matches(@"^request \d+ \(\d+ rows\)", stdout);
        // Bad input: exit 2 naming the file or option, nothing written.
        string bad = h.Write("bad.json", "{ not json");
        var (c2, _, e2) = h.Run("timeline-plot", bad, Path.Combine(h.Dir, "x.png"));
        Assert.Equal(2, c2);
        Assert.Contains("bad.json", e2);
        var (c3, _, e3) = h.Run("timeline-plot", trace, Path.Combine(h.Dir, "x.png"), "--request", "999999");
        Assert.Equal(2, c3);
        Assert.Contains("--request = 999999", e3);
        Assert.False(File.Exists(Path.Combine(h.Dir, "x.png")));
    }
}
