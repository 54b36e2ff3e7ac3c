using IommuSim.Simulation.Config;
using IommuSim.Simulation.Running;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Cli.Tests;

/// <summary>Streaming posted writes with the IOMMU off must reach the closed-form link throughput.</summary>
public class PcieValidationTests
{
    internal static double MeasuredGbps(int gen, int lanes, int mps, long requests = 6000)
    {
        using var h = new CliHarness();
        string json = CliHarness.SmallConfig(design: "off", maxRequests: requests,
            workload: """{ "device": "dev0", "type": "stream", "bytes": 4096, "readFraction": 0, "workingSetBytes": "8MiB" }""");
        string path = h.Write("link.json", json);
        var loaded = ConfigLoader.Load(path, [$"pcie:generation={gen}", $"pcie:lanes={lanes}", $"pcie:maxPayloadBytes={mps}",
            "devices:0:maxOutstanding=64", "memory:bandwidthGBps=1000"], useEnvironment: false);
        var run = SimulationRunner.Run(loaded);
        long bytes = run.Platform.Devices[0].Stats.Bytes;
        return bytes * 8.0 / run.ThroughputWindowNs;
    }

    [Theory]
    [InlineData(3, 8, 128)]
    [InlineData(3, 8, 256)]
    [InlineData(3, 8, 512)]
    [InlineData(4, 16, 128)]
    [InlineData(4, 16, 256)]
    [InlineData(4, 16, 512)]
    public void Streaming_writes_match_the_closed_form_within_one_percent(int gen, int lanes, int mps)
    {
        double expected = LinkArithmetic.PostedWriteGbps(gen, lanes, mps, addressing64: true);
        double measured = MeasuredGbps(gen, lanes, mps);
        Assert.InRange(measured, expected * 0.99, expected * 1.01);
    }

    [Theory]
    [InlineData(1, 2.5 * 0.8)]
    [InlineData(2, 5 * 0.8)]
    [InlineData(3, 8 * 128.0 / 130)]
    [InlineData(5, 32 * 128.0 / 130)]
    public void Raw_rate_per_lane_uses_the_generations_encoding(int gen, double gbpsPerLane)
        => Assert.Equal(gbpsPerLane, LinkArithmetic.BytesPerNs(gen, 1) * 8, 9);

    [Fact]
    public void Tlp_overheads_follow_the_framing_of_each_generation()
    {
        Assert.Equal(256 + 16 + 8, LinkArithmetic.TlpWireBytes(2, 256, true));  // 8b/10b: STP + seq + LCRC + END
        Assert.Equal(256 + 16 + 8, LinkArithmetic.TlpWireBytes(3, 256, true));  // 128b/130b: 4-B STP token (carries the seq) + LCRC
        Assert.Equal(256 + 12 + 8, LinkArithmetic.TlpWireBytes(4, 256, false)); // 3-DW header
        Assert.Equal(256 + 16, LinkArithmetic.TlpWireBytes(6, 256, true));          // FLIT: no per-TLP seq/LCRC
    }
}
