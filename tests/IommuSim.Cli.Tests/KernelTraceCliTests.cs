using System.Text.Json.Nodes;

namespace IommuSim.Cli.Tests;

/// <summary>
/// The kernel-trace workload end to end: the shipped sample traces (configs/traces/) replay through
/// the DMA API of single-stage strict, single-stage lazy and nested, and the simulated kernel makes
/// the calls and invalidations the trace shows. Kernel references: iommu_map_nosync / __iommu_unmap
/// (trace_map, trace_unmap), qi_submit_sync (trace_qi_submit per descriptor, wait not traced),
/// iommu_dma_free_iova / fq_flush_timeout (lazy: one domain flush per timer period).
/// </summary>
public class KernelTraceCliTests
{
    private static string Config(string name) => Path.Combine(CliHarness.RepoRoot, "configs", "traces", name);

    private static JsonNode RunOk(CliHarness h, string config, params string[] extra)
    {
        string outDir = Path.Combine(h.Dir, "out-" + Path.GetFileNameWithoutExtension(config) + extra.Length);
        var (code, _, err) = h.Run(["run", config, "--out", outDir, "--no-plots", "--quiet", .. extra]);
        Assert.True(code == 0, err);
        return JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
    }

    private static long L(JsonNode s, string path)
    {
        JsonNode? n = s;
        foreach (var p in path.Split('.')) n = n![p];
        return (long)(double)n!;
    }

    [Theory]
    [InlineData("kernel-trace-strict.json", "strict", "")]
    [InlineData("kernel-trace-lazy.json", "lazy", "")]
    [InlineData("kernel-trace-nested.json", "strict", "")]
    [InlineData("kernel-trace-nested.json", "strict", "translation:design=shadow")]
    public void The_shipped_trace_replays_with_the_traced_maps_unmaps_and_invalidations(string config, string mode, string set)
    {
        using var h = new CliHarness();
        var s = set.Length == 0 ? RunOk(h, Config(config)) : RunOk(h, Config(config), "--set", set);
        const string k = "devices.nic0.kernelTrace";
        long maps = L(s, $"{k}.trace.maps"), unmaps = L(s, $"{k}.trace.unmaps");
        Assert.True(maps > 0 && unmaps > 0);
        Assert.Equal(maps, L(s, "dmaApi.maps"));
        Assert.Equal(unmaps, L(s, "dmaApi.unmaps"));
        Assert.Equal(maps, L(s, $"{k}.replay.maps"));
        Assert.Equal(0, L(s, $"{k}.replay.untracedUnmaps"));
        // Every qi_submit IOTLB descriptor of the trace, and no other, was issued by the simulated kernel.
        Assert.Equal(L(s, $"{k}.trace.iotlbInvalidations"), L(s, "invalidation.iotlbDescriptors"));
        if (mode == "strict") Assert.Equal(unmaps, L(s, "invalidation.iotlbDescriptors"));
        else Assert.Equal(L(s, $"{k}.trace.iotlbDomainSelective"), L(s, "dmaApi.flushes"));
        Assert.Equal(maps * 1, L(s, $"{k}.replay.dmas")); // dmasPerMap = 1
        Assert.Equal(L(s, $"{k}.replay.dmas"), L(s, "requests.completed"));
        Assert.Equal(0, L(s, "faults.count"));
    }

    [Fact]
    public void The_device_DMAs_to_the_IOVAs_the_traced_kernel_chose()
    {
        // dma-iommu allocated these IOVAs top-down below 4 GiB; the replay keeps them (KernelDmaApi.MapAt)
        // instead of taking new ones from the simulated allocator's window.
        using var h = new CliHarness();
        string rec = Path.Combine(h.Dir, "dmas.csv");
        RunOk(h, Config("kernel-trace-strict.json"), "--record-trace", rec);
        var mapped = File.ReadLines(Config("nic-ping-strict.trace"))
            .Where(l => l.Contains(": map: ", StringComparison.Ordinal))
            .Select(l => Convert.ToUInt64(l[(l.IndexOf("iova=0x", StringComparison.Ordinal) + 7)..][..16], 16))
            .ToHashSet();
        var dmas = File.ReadLines(rec).Skip(1).Select(l => Convert.ToUInt64(l.Split(',')[3][2..], 16)).ToList();
        Assert.Equal(34, dmas.Count);
        Assert.All(dmas, iova => Assert.Contains(iova & ~0xFFFUL, mapped));
    }

    [Fact]
    public void Same_config_and_seed_give_the_same_summary()
    {
        using var h = new CliHarness();
        var a = RunOk(h, Config("kernel-trace-lazy.json"));
        var b = RunOk(h, Config("kernel-trace-lazy.json"), "--seed", "1");
        a["sim"]!.AsObject().Remove("wallSeconds"); a["sim"]!.AsObject().Remove("eventsPerSecond");
        b["sim"]!.AsObject().Remove("wallSeconds"); b["sim"]!.AsObject().Remove("eventsPerSecond");
        Assert.Equal(a.ToJsonString(), b.ToJsonString());
    }

    [Fact]
    public void Time_scale_stretches_the_replay_and_zero_replays_as_fast_as_possible()
    {
        using var h = new CliHarness();
        double Span(params string[] set)
        {
            var s = RunOk(h, Config("kernel-trace-strict.json"), set.SelectMany(x => new[] { "--set", x }).ToArray());
            return (double)s["sim"]!["simulatedNs"]!;
        }
        double one = Span(), two = Span("workloads:0:kernelTrace:timeScale=2"), zero = Span("workloads:0:kernelTrace:timeScale=0");
        Assert.InRange(two / one, 1.99, 2.01);
        Assert.True(zero < one / 1000, $"{zero} ns as fast as possible vs {one} ns at the recorded times");
    }

    private const string Header = "# tracer: nop\n";
    private static string Map(double t, ulong iova, int cpu = 0) =>
        $"  drv-100 [{cpu:000}] .....  {t:0.000000}: map: IOMMU: iova=0x{iova:x16} - 0x{iova + 4096:x16} paddr=0x0000000123400000 size=4096\n";
    private static string Unmap(double t, ulong iova, int cpu = 0) =>
        $"  drv-100 [{cpu:000}] .....  {t:0.000000}: unmap: IOMMU: iova=0x{iova:x16} - 0x{iova + 4096:x16} size=4096 unmapped_size=4096\n";

    private static string KernelTraceConfig(string mode, string design = "single-stage", string file = "k.trace", string extra = "") => $$"""
        {
          "name": "kt",
          "simulation": { "seed": 3, "warmupRequests": 0, "maxRequests": 0 },
          "translation": { "design": "{{design}}", "dmaApi": { "mode": "{{mode}}" } },
          "vms": [ { "name": "vm0", "memoryMiB": 256 } ],
          "devices": [ { "name": "dev0", "bdf": "0000:03:00.0", "maxOutstanding": 16,
                         "attach": { "via": "iommufd", "vm": "vm0" },
                         "dmaRegions": [ { "iova": "0x100000000", "bytes": "16MiB" } ] } ],
          "workloads": [ { "device": "dev0", "type": "kernel-trace", "path": "{{file}}", "bytes": 256{{extra}} } ]
        }
        """;

    [Theory]
    [InlineData("strict", 1, 0)]
    [InlineData("lazy", 0, 1)]
    public void An_io_page_fault_line_becomes_a_DMA_that_faults_when_strict_and_may_hit_a_stale_entry_when_lazy(string mode, int faults, int stale)
    {
        // report_iommu_fault -> trace_io_page_fault: the device touched an IOVA just unmapped.
        using var h = new CliHarness();
        h.Write("k.trace", Header + Map(1.0, 0xfff00000) + Unmap(1.000010, 0xfff00000)
            + "  <idle>-0 [000] d.h1.  1.000012: io_page_fault: IOMMU:drv 0000:03:00.0 iova=0x00000000fff00040 flags=0x0000\n");
        var s = RunOk(h, h.Write("c.json", KernelTraceConfig(mode)));
        Assert.Equal(1, L(s, "devices.dev0.kernelTrace.replay.faultDmas"));
        Assert.Equal(faults, L(s, "faults.count"));
        Assert.Equal(faults, L(s, "devices.dev0.kernelTrace.replay.faultDmasFaulted"));
        Assert.Equal(stale, L(s, "security.staleTranslationsUsed"));
    }

    [Fact]
    public void Unknown_events_are_counted_in_the_summary()
    {
        using var h = new CliHarness();
        h.Write("k.trace", Header + Map(1.0, 0xfff00000)
            + "  <idle>-0 [000] d.h1.  1.000002: irq_handler_entry: irq=24 name=eth1\n"
            + "  <idle>-0 [000] d.h1.  1.000003: irq_handler_entry: irq=24 name=eth1\n"
            + Unmap(1.000010, 0xfff00000));
        var s = RunOk(h, h.Write("c.json", KernelTraceConfig("strict")));
        Assert.Equal(2, L(s, "devices.dev0.kernelTrace.trace.unknownEvents"));
        Assert.Equal(2, L(s, "devices.dev0.kernelTrace.trace.unknownEventsByName.irq_handler_entry"));
    }

    [Fact]
    public void An_unmap_of_a_part_or_of_several_mappings_and_one_of_an_untraced_range_are_replayed()
    {
        // __iommu_unmap takes any page-aligned range; VFIO type1 unmaps page by page.
        using var h = new CliHarness();
        h.Write("k.trace", Header + Map(1.0, 0xfff00000) + Map(1.000001, 0xfff01000)
            + "  drv-100 [000] .....  1.000020: unmap: IOMMU: iova=0x00000000fff00000 - 0x00000000fff02000 size=8192 unmapped_size=8192\n"
            + Unmap(1.000030, 0xffe00000));
        var s = RunOk(h, h.Write("c.json", KernelTraceConfig("strict")));
        Assert.Equal(2, L(s, "dmaApi.unmaps"));
        Assert.Equal(1, L(s, "devices.dev0.kernelTrace.replay.untracedUnmaps"));
        // The design is a VFIO program (iommufd): its IOAS_UNMAP of two areas flushes once per area, as
        // iopt_unmap_iova_range → iopt_area_unmap_domain_range → iommu_unmap (with its iotlb_sync) does; the
        // untraced unmap still flushes its range: three page-selective IOTLB invalidations.
        Assert.Equal(3, L(s, "invalidation.iotlbDescriptors"));
        Assert.Equal(0, L(s, "devices.dev0.kernelTrace.replay.liveMappingsAtEnd"));
    }

    [Theory]
    [InlineData("  drv-100 [000] .....  1.000001: map: IOMMU: iova=0x00000000fff00000 - 0x00000000fff01000 paddr=0x0 size=4096\n", 3, "still mapped since line 2")]
    [InlineData("  drv-100 [000] .....  1.000001: map: IOMMU: iova=0x0000000100000000 - 0x0000000100001000 paddr=0x0 size=4096\n", 3, "premapped dmaRegions[0]")]
    [InlineData("  drv-100 [000] .....  1.000001: map: IOMMU: iova=0x0001000000000000 - 0x0001000000001000 paddr=0x0 size=4096\n", 3, "48-bit")]
    [InlineData("  drv-100 [000] .....  1.000001 map: IOMMU: iova=0x0 - 0x1000 paddr=0x0 size=4096\n", 3, "")]
    public void A_bad_kernel_trace_exits_2_naming_file_and_line_before_anything_runs(string line, int lineNo, string what)
    {
        using var h = new CliHarness();
        h.Write("k.trace", Header + Map(1.0, 0xfff00000) + line);
        string cfg = h.Write("c.json", KernelTraceConfig("strict"));
        string outDir = Path.Combine(h.Dir, "out");
        var (code, _, err) = h.Run("run", cfg, "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains($"k.trace:{lineNo}:", err);
        Assert.Contains(what, err);
        Assert.False(Directory.Exists(outDir));
    }

    [Theory]
    [InlineData("none", "single-stage", "", "translation:dmaApi:mode = none")]
    [InlineData("strict", "single-stage", ", \"kernelTrace\": { \"timeScale\": -1 }", "kernelTrace:timeScale")]
    [InlineData("strict", "single-stage", ", \"mapping\": \"per-request\"", "mapping = per-request")]
    public void Config_errors_of_a_kernel_trace_workload_exit_2(string mode, string design, string extra, string what)
    {
        using var h = new CliHarness();
        h.Write("k.trace", Header + Map(1.0, 0xfff00000));
        string cfg = h.Write("c.json", KernelTraceConfig(mode, design, extra: extra));
        var (code, _, err) = h.Run("check", cfg);
        Assert.Equal(2, code);
        Assert.Contains(what, err);
    }

    [Fact]
    public void Warm_up_is_refused_because_the_trace_is_replayed_whole()
    {
        using var h = new CliHarness();
        h.Write("k.trace", Header + Map(1.0, 0xfff00000));
        string cfg = h.Write("c.json", KernelTraceConfig("strict").Replace("\"warmupRequests\": 0", "\"warmupRequests\": 10"));
        var (code, _, err) = h.Run("check", cfg);
        Assert.Equal(2, code);
        Assert.Contains("simulation:warmupRequests = 10", err);
    }
}
