using System.Globalization;
using System.Text.Json.Nodes;

namespace IommuSim.Cli.Tests;

/// <summary>
/// The IOTLB wall (Farshin et al., PeerJ CS 2023): NIC receive at 200 Gbit/s into recycled 4 KiB-page buffers
/// misses the IOTLB on most packets. Whether that costs throughput depends on how many misses the IOMMU can
/// walk at once; 2 MiB pages remove the misses and with them the loss. Shipped config:
/// <c>configs/nic/nic200-recycle.json</c>; the full sweep is <c>configs/sweeps/iotlb-wall.json</c>.
/// </summary>
public class IotlbWallTests
{
    private const double LineGbps = 200.0 * 1500 / 1520; // 1500-byte packets with 20 bytes of wire overhead

    private static JsonNode Run(CliHarness h, string pageSize, int walkers, bool walkCaches)
    {
        string cfg = Path.Combine(CliHarness.RepoRoot, "configs", "nic", "nic200-recycle.json");
        string outDir = Path.Combine(h.Dir, $"{pageSize}-{walkers}-{walkCaches}");
        var (code, _, err) = h.Run("run", cfg, "--out", outDir, "--no-plots",
            "--set", "simulation:maxRequests=20000", "--set", "simulation:warmupRequests=2000",
            "--set", $"translation:stage2:pageSize={pageSize}",
            "--set", $"iommu:walkers:count={walkers.ToString(CultureInfo.InvariantCulture)}",
            "--set", $"iommu:walkCaches:enabled={(walkCaches ? "true" : "false")}");
        Assert.True(code == 0, err);
        return JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
    }

    private static double Gbps(JsonNode s) => (double)s["devices"]!["nic0"]!["nic"]!["throughputGbps"]!;

    private static double P50(JsonNode s) => (double)s["devices"]!["nic0"]!["nic"]!["latencyNs"]!["p50"]!;

    private static double DropRate(JsonNode s) => (double)s["devices"]!["nic0"]!["nic"]!["dropRate"]!;

    private static double MissRate(JsonNode s) => (double)s["iotlb"]!["missRate"]!;

    [Fact]
    public void With_serialised_walks_4K_pages_hit_a_wall_that_2M_pages_remove()
    {
        using var h = new CliHarness();
        // One walker and no paging-structure caches: every miss is a full 4-read walk, one at a time.
        var small = Run(h, "4K", walkers: 1, walkCaches: false);
        var huge = Run(h, "2M", walkers: 1, walkCaches: false);
        Assert.True(MissRate(small) > 0.7, $"4K miss rate {MissRate(small)}");
        Assert.Equal(0, MissRate(huge));
        Assert.True(Gbps(small) < 0.4 * LineGbps, $"4K delivers {Gbps(small)} Gbit/s");
        Assert.True(DropRate(small) > 0.5, $"4K drop rate {DropRate(small)}");
        Assert.InRange(Gbps(huge), 0.99 * LineGbps, 1.01 * LineGbps);
        Assert.Equal(0, DropRate(huge));
        // A second walker doubles what the 4K configuration sustains: the wall is the walk throughput.
        var two = Run(h, "4K", walkers: 2, walkCaches: false);
        Assert.InRange(Gbps(two) / Gbps(small), 1.8, 2.2);
    }

    [Fact]
    public void With_default_walkers_4K_misses_raise_latency_but_not_throughput()
    {
        using var h = new CliHarness();
        var small = Run(h, "4K", walkers: 4, walkCaches: true);
        var huge = Run(h, "2M", walkers: 4, walkCaches: true);
        Assert.True(MissRate(small) > 0.5, $"4K miss rate {MissRate(small)}");
        Assert.InRange(Gbps(small), 0.99 * LineGbps, 1.01 * LineGbps); // posted writes hide the misses
        Assert.True(P50(small) > P50(huge) + 80, $"p50 4K {P50(small)} ns vs 2M {P50(huge)} ns");
        // One walker with walk caches still keeps up at 200 Gbit/s, but only just: packets queue for it.
        var one = Run(h, "4K", walkers: 1, walkCaches: true);
        Assert.InRange(Gbps(one), 0.99 * LineGbps, 1.01 * LineGbps);
        Assert.True(P50(one) > 10 * P50(huge), $"p50 with one walker {P50(one)} ns vs 2M {P50(huge)} ns");
    }
}
