using System.Text.Json.Nodes;

namespace IommuSim.Cli.Tests;

/// <summary>Per-request mapping through the run-time DMA API, across modes and designs.</summary>
public class DmaApiRunTests
{
    private static JsonNode Run(CliHarness h, string design, string mode, string tag, double stray = 0)
    {
        string cfg = Path.Combine(CliHarness.RepoRoot, "configs", "designs", $"{design}.json");
        string outDir = Path.Combine(h.Dir, tag);
        var (code, _, err) = h.Run("run", cfg, "--out", outDir, "--no-plots",
            "--set", "simulation:maxRequests=3000", "--set", "simulation:warmupRequests=100",
            "--set", "workloads:0:mapping=per-request", "--set", $"workloads:0:strayDmaFraction={stray}",
            "--set", $"translation:dmaApi:mode={mode}");
        Assert.True(code == 0, err);
        return JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
    }

    [Fact]
    public void Stray_dma_after_unmap_faults_with_strict_and_is_served_stale_with_lazy()
    {
        using var h = new CliHarness();
        var strict = Run(h, "single-stage", "strict", "strict", stray: 0.2);
        var lazy = Run(h, "single-stage", "lazy", "lazy", stray: 0.2);
        Assert.Equal(0, (long)strict["security"]!["staleTranslationsUsed"]!);
        Assert.True((long)strict["faults"]!["count"]! > 0);
        Assert.True((long)lazy["security"]!["staleTranslationsUsed"]! > 0);
        // Strict pays an invalidation and its wait per unmap; lazy batches them.
        Assert.True((long)strict["invalidation"]!["descriptors"]! > 10 * (long)lazy["invalidation"]!["descriptors"]!);
        Assert.True((double)strict["dmaApi"]!["unmapLatencyNs"]!["mean"]! > (double)lazy["dmaApi"]!["unmapLatencyNs"]!["mean"]!);
    }

    [Fact]
    public void Shadow_pays_a_trap_per_map_while_nested_maps_in_the_guest()
    {
        using var h = new CliHarness();
        var nested = Run(h, "nested", "strict", "nested");
        var shadow = Run(h, "shadow", "strict", "shadow");
        double nestedMap = (double)nested["dmaApi"]!["mapLatencyNs"]!["mean"]!;
        double shadowMap = (double)shadow["dmaApi"]!["mapLatencyNs"]!["mean"]!;
        Assert.True(shadowMap > nestedMap + 1000, $"shadow map {shadowMap} ns vs nested {nestedMap} ns");
        Assert.True((double)nested["throughput"]!["gbps"]! > (double)shadow["throughput"]!["gbps"]!);
        // Every measured request mapped its buffer once (plus the few in flight when warm-up ended).
        Assert.InRange((long)nested["dmaApi"]!["maps"]!, 3000, 3100);
    }

    [Fact]
    public void None_mode_never_invalidates()
    {
        using var h = new CliHarness();
        var none = Run(h, "single-stage", "none", "none");
        Assert.Equal(0, (long)none["invalidation"]!["descriptors"]!);
        Assert.Equal(0, (long)none["faults"]!["count"]!);
    }
}
