using System.Buffers.Binary;
using IommuSim.Cli.Plots;
using IommuSim.Simulation.Sweeps;
using IommuSim.Cli.Tests.Sweeps;

namespace IommuSim.Cli.Tests.Plots;

public class PlotTests
{
    [Fact]
    public void Confidence_interval_uses_student_t()
    {
        var (mean, half) = PlotKit.MeanCi([1.0, 2.0, 3.0]);
        Assert.Equal(2.0, mean, 12);
        // t(0.975, 2) = 4.302653; s = 1; half = t / sqrt(3)
        Assert.Equal(4.302653 / Math.Sqrt(3), half, 5);
        Assert.Equal((5.0, 0.0), PlotKit.MeanCi([5.0]));
    }

    [Fact]
    public void Cdf_is_monotone_and_ends_at_one()
    {
        var b = new List<RunPlots.Bucket> { new("dma", 10, 11, 3), new("dma", 5, 6, 1), new("dma", 20, 21, 0), new("dma", 30, 32, 4) };
        var (x, y) = RunPlots.Cdf(b);
        Assert.Equal([5.0, 6, 11, 32], x);
        Assert.Equal([0.0, 0.125, 0.5, 1.0], y);
    }

    [Theory]
    [InlineData(65536, 67108864, true)]
    [InlineData(400, 700, false)]
    [InlineData(2, 900, false)]
    [InlineData(0.001, 0.9, false)]
    public void Log_ticks_label_the_range(double min, double max, bool sizes)
    {
        var ticks = PlotKit.LogTickList(min, max, sizes);
        var major = ticks.Where(t => t.Major && t.Position >= Math.Log10(min) - 1e-9 && t.Position <= Math.Log10(max) + 1e-9).ToList();
        Assert.InRange(major.Count, 3, 12);
        Assert.All(major, t => Assert.False(string.IsNullOrEmpty(t.Label)));
    }

    [Fact]
    public void Labels_have_units()
    {
        Assert.Equal("DMA latency, 99th percentile (ns)", PlotKit.Label("latencyNs.dma.p99"));
        Assert.Equal("Working set (bytes)", PlotKit.Label("workloads:0:workingSetBytes"));
        Assert.Equal("Throughput (Gbit/s)", PlotKit.Label("throughput.gbps"));
        Assert.Equal("64 KiB", PlotKit.ValueText("workloads:0:workingSetBytes", "64KiB"));
        Assert.Equal("off", PlotKit.ValueText("iommu:walkCaches:enabled", "false"));
        Assert.Equal("DMA API unmap latency, mean (ns)", PlotKit.Label("dmaApi.unmapLatencyNs.mean"));
        Assert.Equal("Request latency, median (ns)", PlotKit.Label("latencyNs.request.p50"));
    }

    private static (int W, int H) PngSize(string path)
    {
        byte[] b = File.ReadAllBytes(path);
        Assert.True(b.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }), $"{path} is not a PNG");
        return (BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(b.AsSpan(20)));
    }

    [Fact]
    public void Run_and_sweep_plots_are_drawn_and_redrawn()
    {
        using var t = new TempSweep(TempSweep.DefaultSweep
            .Replace("\"iommu:iotlb:sets\": [4, 16]", "\"iommu:iotlb:sets\": [4, 16], \"translation:design\": [\"single-stage\", \"passthrough\"]", StringComparison.Ordinal)
            .Replace("\"64KiB\", \"1MiB\", \"4MiB\"", "\"64KiB\", \"1MiB\"", StringComparison.Ordinal));
        var plan = SweepPlan.Prepare(t.SweepPath, useEnvironment: false);
        var r = SweepRunner.Run(plan, new SweepOptions(t.Sub("out"), 2, ShardSpec.All, false) { PointExtra = RunPlots.Draw, ResultsExtra = (d, s, tb) => SweepPlots.Draw(d, s, tb) });
        Assert.True(r.Complete);
        string dir = t.Sub("out");
        // facets: one missRate plot per design (the vary key that is neither x nor series)
        var pngs = Directory.GetFiles(dir, "*.png").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(
            [SweepPlots.DesignFile,
             "iotlb.missRate-vs-workingSetBytes-by-sets--design-passthrough.png",
             "iotlb.missRate-vs-workingSetBytes-by-sets--design-single-stage.png"], pngs);
        foreach (var f in pngs)
        {
            var (w, h) = PngSize(Path.Combine(dir, f!));
            Assert.True(w >= 800 && h >= 500, $"{f}: {w}x{h}");
        }
        string point = SweepRunner.PointDir(dir, 0);
        foreach (var f in new[] { RunPlots.LatencyCdf, RunPlots.MissRate, RunPlots.WalkReads })
            Assert.True(PngSize(Path.Combine(point, f)).W >= 800);

        foreach (var f in pngs) File.Delete(Path.Combine(dir, f!));
        File.Delete(Path.Combine(point, RunPlots.LatencyCdf));
        Assert.Equal(0, Commands.CliApp.Run(["plot", dir], new StringWriter(), new StringWriter()));
        Assert.Equal(0, Commands.CliApp.Run(["plot", point], new StringWriter(), new StringWriter()));
        Assert.Equal(3, Directory.GetFiles(dir, "*.png").Length);
        Assert.True(File.Exists(Path.Combine(point, RunPlots.LatencyCdf)));
        Assert.Equal(2, Commands.CliApp.Run(["plot", t.Dir], new StringWriter(), new StringWriter()));
    }
}
