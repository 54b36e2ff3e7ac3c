using System.Globalization;
using ScottPlot;

namespace IommuSim.Cli.Plots;

/// <summary>
/// The plots of one run, drawn from the files in its folder (so <c>plot DIR</c> can redraw them):
/// latency-cdf.png (translation and DMA latency CDFs, log ns axis), iotlb-miss-rate.png (miss rate
/// per sampling interval over simulated time, from timeseries.csv deltas) and walk-reads.png
/// (histogram of page-table reads per walk).
/// </summary>
public static class RunPlots
{
    public const string LatencyCdf = "latency-cdf.png";
    public const string MissRate = "iotlb-miss-rate.png";
    public const string WalkReads = "walk-reads.png";

    public static void Draw(string dir)
    {
        var lat = ReadLatency(Path.Combine(dir, "latency.csv"));
        DrawLatencyCdf(lat, Path.Combine(dir, LatencyCdf));
        DrawWalkReads(lat, Path.Combine(dir, WalkReads));
        string ts = Path.Combine(dir, "timeseries.csv");
        if (File.Exists(ts)) DrawMissRate(ReadRows(ts), Path.Combine(dir, MissRate));
    }

    internal sealed record Bucket(string Kind, double Low, double High, long Count);

    internal static List<Bucket> ReadLatency(string path)
    {
        var rows = ReadRows(path);
        return rows.Select(r => new Bucket(r[0], Parse(r[1]), Parse(r[2]), (long)Parse(r[3]))).ToList();
    }

    private static double Parse(string s) => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static List<string[]> ReadRows(string path)
    {
        if (!File.Exists(path)) throw new Simulation.Config.ConfigError($"plot error: {path}: file not found");
        return File.ReadLines(path).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToList();
    }

    /// <summary>CDF points (value at the top of each bucket, cumulative fraction) of one latency kind.</summary>
    internal static (double[] X, double[] Y) Cdf(IEnumerable<Bucket> buckets)
    {
        var b = buckets.Where(x => x.Count > 0).OrderBy(x => x.Low).ToList();
        long total = b.Sum(x => x.Count);
        var xs = new List<double>(); var ys = new List<double>();
        long seen = 0;
        if (b.Count > 0) { xs.Add(b[0].Low); ys.Add(0); }
        foreach (var x in b)
        {
            seen += x.Count;
            xs.Add(x.High);
            ys.Add(seen / (double)total);
        }
        return ([.. xs], [.. ys]);
    }

    private static void DrawLatencyCdf(List<Bucket> lat, string path)
    {
        var p = PlotKit.NewPlot("Latency distribution (CDF)", "Latency (ns, log scale)", "Fraction of requests at or below");
        var series = new[] { ("translation", "Translation (TLP arrival at IOMMU → translated address)"), ("dma", "DMA request (issue → completion)") };
        double min = double.MaxValue, max = 0;
        int drawn = 0;
        for (int i = 0; i < series.Length; i++)
        {
            var (xs, ys) = Cdf(lat.Where(b => b.Kind == series[i].Item1));
            var keep = xs.Select((x, k) => (x, y: ys[k])).Where(t => t.x > 0).ToList();
            if (keep.Count == 0) continue;
            min = Math.Min(min, keep[0].x); max = Math.Max(max, keep[^1].x);
            var sc = p.Add.Scatter(keep.Select(t => Math.Log10(t.x)).ToArray(), keep.Select(t => t.y).ToArray(), PlotKit.ColorOf(i));
            sc.ConnectStyle = ConnectStyle.StepHorizontal;
            sc.MarkerSize = 0;
            sc.LineWidth = 2;
            sc.LegendText = series[i].Item2;
            drawn++;
        }
        if (drawn == 0) p.Add.Annotation("no latency samples in this run");
        else
        {
            p.Axes.Bottom.TickGenerator = PlotKit.LogTicks(min, max, sizes: false);
            var (lo, hi) = PlotKit.LogLimits(min, max);
            p.Axes.SetLimits(lo, hi, -0.02, 1.02);
            // Outside the data area: inside it, the long series names covered the rising part of the curves.
            p.ShowLegend(Edge.Bottom);
        }
        PlotKit.Save(p, path);
    }

    /// <summary>The walk-reads plot's title: walks are the histogram's counts, reads its values times counts.</summary>
    internal static string WalkReadsTitle(IReadOnlyList<Bucket> walkReads)
    {
        long walks = walkReads.Sum(x => x.Count);
        long reads = walkReads.Sum(x => (long)x.Low * x.Count);
        return string.Create(CultureInfo.InvariantCulture, $"Page-table reads per page walk ({walks:N0} walks, {reads:N0} reads, mean {(walks > 0 ? reads / (double)walks : 0):0.##} per walk)");
    }

    private static void DrawWalkReads(List<Bucket> lat, string path)
    {
        var b = lat.Where(x => x.Kind == "walkReads" && x.Count > 0).OrderBy(x => x.Low).ToList();
        long walks = b.Sum(x => x.Count);
        var p = PlotKit.NewPlot("Page-table reads per page walk", "Memory reads per walk (page-table entries)", "Page walks");
        if (b.Count == 0)
        {
            p.Add.Annotation("no page walks in this run (translation off, pass-through, or every lookup hit)", Alignment.MiddleCenter);
            p.Axes.SetLimits(0, 10, 0, 1);
        }
        else
        {
            var bars = b.Select(x => new Bar { Position = x.Low, Value = x.Count, FillColor = PlotKit.ColorOf(0), Size = 0.6 }).ToList();
            p.Add.Bars(bars);
            p.Title(WalkReadsTitle(b));
            var ticks = new ScottPlot.TickGenerators.NumericManual();
            int lo = 0, hi = (int)b[^1].Low;
            int step = Math.Max(1, (hi - lo + 1) / 25 + 1);
            var at = new SortedSet<int>();
            for (int v = lo; v <= hi; v += step) at.Add(v);
            foreach (var x in b) if (at.All(v => Math.Abs(v - (int)x.Low) >= Math.Max(1, step / 2 + 1) || v == (int)x.Low)) at.Add((int)x.Low);
            foreach (int v in at) ticks.AddMajor(v, v.ToString(CultureInfo.InvariantCulture));
            p.Axes.Bottom.TickGenerator = ticks;
            p.Axes.SetLimits(Math.Min(0, lo - 1), Math.Max(hi + 1, 6), 0, b.Max(x => x.Count) * 1.08);
        }
        PlotKit.Save(p, path);
    }

    private static void DrawMissRate(List<string[]> rows, string path)
    {
        var p = PlotKit.NewPlot("IOTLB miss rate over simulated time", "Simulated time since the measured phase began (µs)", "IOTLB miss rate (misses / lookups per interval)");
        var xs = new List<double>(); var ys = new List<double>();
        long prevL = 0, prevM = 0;
        foreach (var r in rows)
        {
            double t = Parse(r[0]);
            long l = long.Parse(r[1], CultureInfo.InvariantCulture), m = long.Parse(r[2], CultureInfo.InvariantCulture);
            long dl = l - prevL, dm = m - prevM;
            if (dl > 0) { xs.Add(t / 1000.0); ys.Add(dm / (double)dl); }
            prevL = l; prevM = m;
        }
        if (xs.Count == 0)
        {
            p.Add.Annotation("no IOTLB lookups in this run (translation off or pass-through)", Alignment.MiddleCenter);
            double end = rows.Count > 0 ? Parse(rows[^1][0]) / 1000.0 : 1;
            p.Axes.SetLimits(0, end > 0 ? end : 1, 0, 1);
        }
        else
        {
            var sc = p.Add.Scatter(xs.ToArray(), ys.ToArray(), PlotKit.ColorOf(0));
            sc.MarkerSize = xs.Count > 200 ? 0 : 4;
            sc.LineWidth = 1.5f;
            sc.LegendText = "per sampling interval";
            double overall = prevL > 0 ? prevM / (double)prevL : 0;
            var h = p.Add.HorizontalLine(overall, 2, PlotKit.ColorOf(3), LinePattern.Dashed);
            h.LegendText = string.Create(CultureInfo.InvariantCulture, $"whole run: {overall:0.###}");
            p.Axes.SetLimitsY(-0.02, 1.02);
            p.ShowLegend(Alignment.UpperRight);
        }
        PlotKit.Save(p, path);
    }
}
