using System.Text.Json.Nodes;

namespace IommuSim.Cli.Tests.Timeline;

/// <summary>
/// <c>run --timeline</c> on <c>iommu.architecture = smmuv3</c>: the SMMU's translation stages (slot wait,
/// configuration cache, STE/CD fetch reads, TLB, walk with per-read slices, 2-D walks) and its command
/// queues, with the VT-d timeline's invariants: slices nest, phases tile each request and add up to its
/// latency, and results are byte-identical with and without the timeline.
/// </summary>
public class SmmuTimelineTests
{
    private static readonly string[] Smmu = ["--set", "iommu:architecture=smmuv3"];

    private static string Design(string design) => Path.Combine(CliHarness.RepoRoot, "configs", "designs", $"{design}.json");

    private static string PerRequestBase => Path.Combine(CliHarness.RepoRoot, "configs", "sweeps", "architectures-per-request.base.json");

    private static (TraceFile Trace, JsonNode Summary) Run(CliHarness h, string config, string tag, params string[] extra)
    {
        string outDir = Path.Combine(h.Dir, tag), trace = Path.Combine(h.Dir, tag + ".trace.json");
        var (code, _, err) = h.Run(["run", config, "--out", outDir, "--no-plots", "--timeline", trace, .. Smmu, .. extra]);
        Assert.True(code == 0, err);
        return (new TraceFile(trace), JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!);
    }

    [Theory]
    [InlineData("single-stage", "premapped", "strict")]
    [InlineData("single-stage", "per-request", "strict")]
    [InlineData("nested", "per-request", "lazy")]
    public void Request_slices_add_up_to_the_measured_latencies(string design, string mapping, string mode)
    {
        using var h = new CliHarness();
        var (t, s) = Run(h, Design(design), design, "--set", "simulation:maxRequests=600", "--set", "simulation:warmupRequests=0",
            "--set", $"workloads:0:mapping={mapping}", "--set", $"translation:dmaApi:mode={mode}", "--timeline-max-requests", "100000");
        t.AssertSlicesNest();
        t.AssertPhasesTileRequests();
        t.AssertFlows();
        Assert.Equal("0", t.OtherData.GetProperty("phaseAnomalies").GetString());
        var requests = t.Requests.ToList();
        Assert.Equal((long)s["requests"]!["completed"]!, requests.Count);
        Assert.Equal((double)s["latencyNs"]!["dma"]!["mean"]!, requests.Average(r => r.DurPs) / 1000.0, 3);
        // The SMMU's stages are the request's phases, and its slot slices carry them.
        int pipeline = t.Pid("SMMUv3 pipeline");
        var phases = t.Slices.Where(e => e.Cat == "dma.phase").Select(e => e.Name).ToHashSet();
        Assert.Contains("config cache lookup", phases);
        Assert.Contains("TLB lookup", phases);
        Assert.Contains("STE/CD fetch", phases); // the first requests find the configuration cache cold
        Assert.DoesNotContain("context + IOTLB lookup", phases);
        Assert.Contains(t.Slices, e => e.Pid == pipeline && e.Name == "STE read");
        Assert.Contains(t.Slices, e => e.Pid == pipeline && e.Name == "TLB miss");
        Assert.Equal((long)s["walks"]!["count"]!, t.Slices.Count(e => e.Pid == t.Pid("SMMUv3 table walkers") && e.Name == "walk"));
        if (mapping == "per-request" && mode == "strict")
        {
            // Each unmap's TLBI and CMD_SYNC on the main command queue, as summary.json counts them.
            int queues = t.Pid("SMMUv3 command queues");
            var cq = s["smmu"]!["commandQueue"]!;
            Assert.Equal((long)cq["syncs"]!, t.Slices.Count(e => e.Pid == queues && e.Name == "CMD_SYNC"));
            Assert.Equal((long)cq["byType"]!["tlbiNhVa"]!, t.Slices.Count(e => e.Pid == queues && e.Name == "CMD_TLBI_NH_VA"));
            var sync = t.Slices.First(e => e.Pid == queues && e.Name == "CMD_SYNC");
            Assert.True(sync.Args.GetProperty("waitNs").GetDouble() > 0);
        }
    }

    [Fact]
    public void Results_are_byte_identical_with_and_without_a_timeline()
    {
        using var h = new CliHarness();
        string[] set = ["--set", "simulation:maxRequests=2000", "--set", "workloads:0:mapping=per-request",
            "--set", "workloads:0:strayDmaFraction=0.2", "--set", "translation:dmaApi:mode=strict"];
        string plain = Path.Combine(h.Dir, "plain");
        Assert.Equal(0, h.Run(["run", Design("single-stage"), "--out", plain, "--no-plots", .. Smmu, .. set]).Code);
        var (_, s) = Run(h, Design("single-stage"), "traced", set);
        static IEnumerable<string> Lines(string dir) => File.ReadAllLines(Path.Combine(dir, "summary.json"))
            .Where(l => !l.Contains("\"wallSeconds\"", StringComparison.Ordinal) && !l.Contains("\"eventsPerSecond\"", StringComparison.Ordinal));
        Assert.Equal(Lines(plain), Lines(Path.Combine(h.Dir, "traced")));
        Assert.Equal(File.ReadAllText(Path.Combine(plain, "latency.csv")), File.ReadAllText(Path.Combine(h.Dir, "traced", "latency.csv")));
        // Stray DMAs fault (F_TRANSLATION); faults.count is the sum of its reasons.
        Assert.True((long)s["faults"]!["byReason"]!["fTranslation"]! > 0);
        Assert.Equal((long)s["faults"]!["count"]!, s["faults"]!["byReason"]!.AsObject().Sum(kv => (long)kv.Value!));
    }

    [Fact]
    public void A_cold_nested_miss_shows_its_24_walk_reads_with_vmsa_level_names()
    {
        using var h = new CliHarness();
        var (t, _) = Run(h, Design("nested"), "nested", "--set", "iommu:smmu:walkCache:enabled=false", "--set", "simulation:maxRequests=300",
            "--timeline-max-requests", "200");
        t.AssertSlicesNest();
        t.AssertPhasesTileRequests();
        int walkers = t.Pid("SMMUv3 table walkers");
        // 4 stage-1 levels over 4 stage-2 levels: (4 + 1)(4 + 1) − 1 = 24 dependent reads.
        var walk = t.Slices.First(e => e.Pid == walkers && e.Name == "walk" && e.Args.GetProperty("reads").GetInt32() == 24);
        var reads = t.Slices.Where(e => e.Pid == walkers && e.Tid == walk.Tid && e.Name.EndsWith(" read", StringComparison.Ordinal)
            && e.TsPs >= walk.TsPs && e.TsPs + e.DurPs <= walk.TsPs + walk.DurPs).ToList();
        Assert.Equal(24, reads.Count);
        Assert.Equal(["S1 L0 read", "S1 L1 read", "S1 L2 read", "S1 L3 read"],
            reads.Where(r => r.Name.StartsWith("S1 ", StringComparison.Ordinal)).Select(r => r.Name).ToArray());
        Assert.Equal(20, reads.Count(r => r.Name.StartsWith("S2 L", StringComparison.Ordinal)));
        // Reads are dependent: each starts at or after the previous one's end.
        for (int i = 1; i < reads.Count; i++) Assert.True(reads[i].TsPs >= reads[i - 1].TsPs + reads[i - 1].DurPs);
        // The nested configuration fetch: the STE, then the guest's CD at an IPA that stage 2 translates first.
        int pipeline = t.Pid("SMMUv3 pipeline");
        var fetch = t.Slices.First(e => e.Pid == pipeline && e.Name == "STE/CD fetch" && e.Args.GetProperty("reads").GetInt32() > 0);
        var inside = t.Slices.Where(e => e.Pid == pipeline && e.Tid == fetch.Tid && e.TsPs >= fetch.TsPs
            && e.TsPs + e.DurPs <= fetch.TsPs + fetch.DurPs && e.Name.EndsWith(" read", StringComparison.Ordinal)).Select(e => e.Name).ToList();
        Assert.Contains("STE read", inside);
        Assert.Contains("CD IPA: S2 read", inside);
        Assert.Equal("CD read", inside[^1]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Guest_invalidations_go_to_the_main_queue_when_trapped_and_to_a_vcmdq_with_a_hardware_queue(bool hwQueue)
    {
        using var h = new CliHarness();
        var (t, s) = Run(h, PerRequestBase, "hq", "--set", $"translation:viommu:hwQueue={(hwQueue ? "true" : "false")}",
            "--set", "simulation:maxRequests=300", "--set", "simulation:warmupRequests=0", "--timeline-max-requests", "100000");
        t.AssertSlicesNest();
        t.AssertPhasesTileRequests();
        int queues = t.Pid("SMMUv3 command queues");
        var smmu = s["smmu"]!;
        long mainTlbi = (long)smmu["commandQueue"]!["byClass"]!["tlbi"]!;
        if (hwQueue)
        {
            var v = smmu["vcmdqs"]!["0"]!;
            Assert.True((long)v["byClass"]!["tlbi"]! > 0);
            Assert.True((long)v["syncWaitNs"]!["count"]! > 0);
            Assert.Equal(0, mainTlbi);
            Assert.Equal("VCMDQ 0 (guest-owned)", t.Threads[(queues, 2)]);
            Assert.Equal((long)v["syncs"]!, t.Slices.Count(e => e.Pid == queues && e.Tid == 2 && e.Name == "CMD_SYNC"));
            Assert.DoesNotContain(t.Slices, e => e.Pid == queues && e.Tid == 1 && e.Name.StartsWith("CMD_TLBI", StringComparison.Ordinal));
        }
        else
        {
            Assert.Null(smmu["vcmdqs"]);
            Assert.True(mainTlbi > 0);
            Assert.Equal(mainTlbi, t.Slices.Count(e => e.Pid == queues && e.Tid == 1 && e.Name.StartsWith("CMD_TLBI", StringComparison.Ordinal)));
        }
        // invalidation.* counts every queue the SMMU consumes.
        long all = (long)smmu["commandQueue"]!["commands"]! + (hwQueue ? (long)smmu["vcmdqs"]!["0"]!["commands"]! : 0);
        Assert.Equal(all, (long)s["invalidation"]!["descriptors"]! + (long)s["invalidation"]!["waitDescriptors"]!);
    }
}
