using System.Globalization;
using System.Text;
using IommuSim.Simulation.Sweeps;
using IommuSim.Engine.Units;
using ScottPlot;

namespace IommuSim.Cli.Plots;

/// <summary>
/// The plots of a sweep, drawn from sweep.csv's table. Each plot of the sweep file becomes one PNG per
/// combination of the vary keys that are neither x nor series ("facets"), with one line per series
/// value: the mean over seeds, and a shaded 95 % confidence band (Student t) when there are several
/// seeds. A categorical x (text values such as design names) gives grouped bars with CI error bars.
/// When <c>translation:design</c> is varied, design-comparison.png compares the designs on translation
/// latency, p99 DMA latency and throughput.
/// </summary>
public static class SweepPlots
{
    public const string DesignKey = "translation:design";
    public const string DesignFile = "design-comparison.png";

    public static List<string> Draw(string dir, SweepSpec spec, SweepTable table)
    {
        var files = new List<string>();
        foreach (var pl in spec.Plots) files.AddRange(DrawPlot(dir, spec, table, pl));
        if (spec.VaryKeys.Contains(DesignKey, StringComparer.Ordinal))
        {
            DrawDesigns(Path.Combine(dir, DesignFile), spec, table);
            files.Add(DesignFile);
        }
        return files;
    }

    private sealed record Cell(string Series, string XText, List<double> X, List<double> Y);

    private enum XKind { Numeric, Size, Category }

    private static IEnumerable<string> DrawPlot(string dir, SweepSpec spec, SweepTable table, PlotSpec pl)
    {
        var vary = spec.VaryKeys.ToList();
        bool xIsVary = vary.Contains(pl.X, StringComparer.Ordinal);
        var facetKeys = vary.Where(k => k != pl.X && !pl.Series.Contains(k, StringComparer.Ordinal)).ToList();
        var facets = table.Rows.GroupBy(r => string.Join("\u001f", facetKeys.Select(k => table.Cell(r, k)))).ToList();
        foreach (var facet in facets)
        {
            var rows = facet.ToList();
            string facetText = string.Join(", ", facetKeys.Select(k => $"{PlotKit.ShortName(k)} = {PlotKit.ValueText(k, table.Cell(rows[0], k))}"));
            var cells = new List<Cell>();
            var index = new Dictionary<string, Cell>(StringComparer.Ordinal);
            foreach (var r in rows)
            {
                string series = SeriesLabel(pl.Series, table, r);
                string xText = xIsVary || pl.X == SweepTable.SeedColumn ? table.Cell(r, pl.X) : string.Join("\u001f", vary.Select(k => table.Cell(r, k)));
                string key = series + "\u001e" + xText;
                if (!index.TryGetValue(key, out var c))
                {
                    c = new Cell(series, xIsVary ? table.Cell(r, pl.X) : "", [], []);
                    index[key] = c;
                    cells.Add(c);
                }
                if (TryNum(table.Cell(r, pl.Y), out double y)) c.Y.Add(y);
                if (TryX(pl.X, table.Cell(r, pl.X), out double x)) c.X.Add(x);
            }
            var kind = XKind.Numeric;
            if (xIsVary)
            {
                var texts = cells.Select(c => c.XText).ToList();
                if (texts.All(t => TryNum(t, out _))) kind = PlotKit.IsSizeKey(pl.X) ? XKind.Size : XKind.Numeric;
                else if (texts.All(t => ByteSize.TryParse(t, out _, out _))) kind = XKind.Size;
                else kind = XKind.Category;
            }
            else if (PlotKit.IsSizeKey(pl.X)) kind = XKind.Size;

            int seeds = rows.GroupBy(r => string.Join("\u001f", vary.Select(k => table.Cell(r, k)))).Max(g => g.Count());
            string title = (pl.Title ?? $"{PlotKit.Name(pl.Y)} vs {PlotKit.Name(pl.X).ToLowerInvariant()}");
            var sub = new List<string>();
            if (facetText.Length > 0) sub.Add(facetText);
            sub.Add(seeds > 1 ? $"mean of {seeds} seeds, {(kind == XKind.Category ? "error bars" : "band")} = 95 % confidence interval" : "one seed");
            title += "\n" + string.Join("; ", sub);

            string xLabel = kind == XKind.Size && !PlotKit.Label(pl.X).Contains("(bytes)", StringComparison.Ordinal) ? PlotKit.Label(pl.X) + " (bytes)" : PlotKit.Label(pl.X);
            if (pl.LogX && kind != XKind.Category) xLabel += ", log scale";
            string yLabel = PlotKit.Label(pl.Y) + (pl.LogY ? ", log scale" : "");
            var p = PlotKit.NewPlot(title, xLabel, yLabel);
            if (kind == XKind.Category) DrawBars(p, cells, spec, pl, pl.LogY);
            else DrawLines(p, cells, pl, kind);

            string file = FileName(pl, facetKeys.Count == 0 ? "" : string.Join("-", facetKeys.Select(k => $"{Tail(k)}-{table.Cell(rows[0], k)}")));
            PlotKit.Save(p, Path.Combine(dir, file), WidthFor(cells.Select(c => c.Series)));
            yield return file;
        }
    }

    private static string SeriesLabel(IReadOnlyList<string> keys, SweepTable table, string[] row)
        => string.Join(", ", keys.Select(k => $"{PlotKit.ShortName(k)} = {PlotKit.ValueText(k, table.Cell(row, k))}{EntriesNote(k, table, row)}"));

    /// <summary>IOTLB geometry keys are easier to read with the resulting entry count: "IOTLB sets = 16 (64 entries)".</summary>
    private static string EntriesNote(string key, SweepTable table, string[] row)
        => key is "iommu:iotlb:sets" or "iommu:iotlb:ways" && table.Cell(row, "iotlb.entries") is { Length: > 0 } e ? $" ({e} entries)" : "";

    private static bool TryNum(string s, out double v) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v) && double.IsFinite(v);

    private static bool TryX(string key, string s, out double v)
    {
        if (TryNum(s, out v)) return true;
        if (ByteSize.TryParse(s, out var b, out _)) { v = b.Bytes; return true; }
        return false;
    }

    private static void DrawLines(Plot p, List<Cell> cells, PlotSpec pl, XKind kind)
    {
        var series = cells.Select(c => c.Series).Distinct().ToList();
        var style = LineStyles(series);
        double xmin = double.MaxValue, xmax = double.MinValue, ymin = double.MaxValue, ymax = double.MinValue;
        int dropped = 0;
        for (int s = 0; s < series.Count; s++)
        {
            var pts = cells.Where(c => c.Series == series[s] && c.X.Count > 0 && c.Y.Count > 0)
                .Select(c => (x: c.X.Average(), ci: PlotKit.MeanCi(c.Y)))
                .OrderBy(t => t.x).ToList();
            int before = pts.Count;
            pts = pts.Where(t => (!pl.LogX || t.x > 0) && (!pl.LogY || t.ci.Mean > 0)).ToList();
            dropped += before - pts.Count;
            if (pts.Count == 0) continue;
            double Tx(double x) => pl.LogX ? Math.Log10(x) : x;
            double Ty(double y) => pl.LogY ? Math.Log10(Math.Max(y, pts.Min(t => t.ci.Mean) / 10)) : y;
            double[] xs = pts.Select(t => Tx(t.x)).ToArray();
            var (ci, pi) = style[series[s]];
            var color = PlotKit.ColorOf(ci);
            if (pts.Any(t => t.ci.Half > 0))
            {
                var fill = p.Add.FillY(xs, pts.Select(t => Ty(t.ci.Mean - t.ci.Half)).ToArray(), pts.Select(t => Ty(t.ci.Mean + t.ci.Half)).ToArray());
                fill.FillStyle.Color = color.WithAlpha(0.18);
                fill.LineStyle.Width = 0;
            }
            var sc = p.Add.Scatter(xs, pts.Select(t => Ty(t.ci.Mean)).ToArray(), color);
            sc.LineWidth = 2;
            sc.MarkerSize = 7;
            sc.LinePattern = Patterns[pi % Patterns.Length];
            sc.MarkerShape = Markers[pi % Markers.Length];
            sc.LegendText = series[s].Length == 0 ? PlotKit.Name(pl.Y) : series[s];
            xmin = Math.Min(xmin, pts[0].x); xmax = Math.Max(xmax, pts[^1].x);
            ymin = Math.Min(ymin, pts.Min(t => t.ci.Mean - t.ci.Half)); ymax = Math.Max(ymax, pts.Max(t => t.ci.Mean + t.ci.Half));
        }
        if (xmin > xmax) { p.Add.Annotation("no data"); return; }
        if (pl.LogX)
        {
            p.Axes.Bottom.TickGenerator = PlotKit.LogTicks(xmin, xmax, kind == XKind.Size);
            var (lo, hi) = PlotKit.LogLimits(xmin, xmax);
            p.Axes.SetLimitsX(lo, hi);
        }
        else if (kind == XKind.Size)
        {
            var ticks = new ScottPlot.TickGenerators.NumericManual();
            foreach (var x in cells.SelectMany(c => c.X).Distinct().Order()) ticks.AddMajor(x, PlotKit.Bytes(x));
            p.Axes.Bottom.TickGenerator = ticks;
        }
        if (pl.LogY)
        {
            double lo = Math.Max(ymin, cells.SelectMany(c => c.Y).Where(v => v > 0).DefaultIfEmpty(1).Min());
            p.Axes.Left.TickGenerator = PlotKit.LogTicks(lo, Math.Max(lo, ymax), sizes: false);
            var (a, b) = PlotKit.LogLimits(lo, Math.Max(lo, ymax));
            p.Axes.SetLimitsY(a, b);
        }
        else if (ymin >= 0)
        {
            p.Axes.SetLimitsY(0, ymax <= 0 ? 1 : ymax * 1.06);
        }
        if (dropped > 0) p.Add.Annotation($"{dropped} point(s) at or below 0 not shown on the log axis", Alignment.LowerLeft);
        if (series.Count > 1 || series[0].Length > 0) p.ShowLegend(Edge.Right);
    }

    private static readonly LinePattern[] Patterns = [LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed];
    private static readonly MarkerShape[] Markers = [MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond];

    /// <summary>With several series keys, the colour follows the first key's value and the line pattern and
    /// marker the rest, so "16 entries, 2M" and "16 entries, 4K" share a colour and differ in dash.</summary>
    private static Dictionary<string, (int Color, int Pattern)> LineStyles(List<string> series)
    {
        var firsts = new List<string>();
        var rests = new List<string>();
        var d = new Dictionary<string, (int, int)>(StringComparer.Ordinal);
        foreach (var s in series)
        {
            int cut = s.IndexOf(", ", StringComparison.Ordinal);
            string a = cut < 0 ? s : s[..cut], b = cut < 0 ? "" : s[(cut + 2)..];
            if (!firsts.Contains(a)) firsts.Add(a);
            if (!rests.Contains(b)) rests.Add(b);
        }
        bool split = rests.Count > 1 && rests.Count <= Patterns.Length;
        for (int i = 0; i < series.Count; i++)
        {
            var s = series[i];
            int cut = s.IndexOf(", ", StringComparison.Ordinal);
            d[s] = split
                ? (firsts.IndexOf(cut < 0 ? s : s[..cut]), rests.IndexOf(cut < 0 ? "" : s[(cut + 2)..]))
                : (i, 0);
        }
        return d;
    }

    /// <summary>Wide enough for the plot plus a legend on the right.</summary>
    private static int WidthFor(IEnumerable<string> legend)
        => PlotKit.Width + Math.Max(0, legend.Select(l => l.Length).DefaultIfEmpty(0).Max() - 28) * 7;

    private static void DrawBars(Plot p, List<Cell> cells, SweepSpec spec, PlotSpec pl, bool logY)
    {
        var order = spec.Vary.FirstOrDefault(v => v.Key == pl.X).Value ?? [];
        var cats = cells.Select(c => c.XText).Distinct().OrderBy(t => { int i = order.ToList().IndexOf(t); return i < 0 ? int.MaxValue : i; }).ToList();
        var series = cells.Select(c => c.Series).Distinct().ToList();
        GroupedBars(p, cats, series, (cat, s) => cells.FirstOrDefault(c => c.XText == cat && c.Series == s)?.Y ?? [], pl.X);
        if (logY) p.Add.Annotation("log scale is not used for bar charts", Alignment.LowerLeft);
    }

    /// <summary>Bars grouped by category, one colour per series, CI error bars, legend on the right.</summary>
    private static void GroupedBars(Plot p, List<string> cats, List<string> series, Func<string, string, List<double>> values, string catKey)
    {
        int n = Math.Max(1, series.Count);
        double width = 0.8 / n;
        var bars = new List<Bar>();
        double ymax = 0;
        for (int c = 0; c < cats.Count; c++)
            for (int s = 0; s < series.Count; s++)
            {
                var v = values(cats[c], series[s]);
                if (v.Count == 0) continue;
                var (mean, half) = PlotKit.MeanCi(v);
                bars.Add(new Bar
                {
                    Position = c - 0.4 + width * (s + 0.5),
                    Value = mean,
                    Error = half,
                    Size = width * 0.92,
                    FillColor = PlotKit.ColorOf(s),
                    Label = PlotKit.Number(mean),
                });
                ymax = Math.Max(ymax, mean + half);
            }
        var plot = p.Add.Bars(bars);
        plot.ValueLabelStyle.FontSize = bars.Count > 24 ? 9 : 11;
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int c = 0; c < cats.Count; c++) ticks.AddMajor(c, PlotKit.ValueText(catKey, cats[c]));
        p.Axes.Bottom.TickGenerator = ticks;
        p.Axes.Bottom.MajorTickStyle.Length = 0;
        p.Axes.SetLimits(-0.6, cats.Count - 0.4, 0, ymax <= 0 ? 1 : ymax * 1.12);
        if (series.Count > 1 || (series.Count == 1 && series[0].Length > 0))
        {
            for (int s = 0; s < series.Count; s++)
                p.Legend.ManualItems.Add(new LegendItem { LabelText = series[s], FillColor = PlotKit.ColorOf(s) });
            p.ShowLegend(Edge.Right);
        }
    }

    private static readonly (string Key, string File)[] DesignMetrics =
    [
        ("latencyNs.translation.mean", "translation"),
        ("latencyNs.dma.p99", "dma-p99"),
        ("throughput.gbps", "throughput"),
    ];

    private static void DrawDesigns(string path, SweepSpec spec, SweepTable table)
    {
        var designs = spec.Vary.First(v => v.Key == DesignKey).Value;
        var others = spec.VaryKeys.Where(k => k != DesignKey).ToList();
        var series = table.Rows.Select(r => SeriesLabel(others, table, r)).Distinct().ToList();
        int seeds = table.Rows.GroupBy(r => string.Join("\u001f", spec.VaryKeys.Select(k => table.Cell(r, k)))).Max(g => g.Count());
        var mp = new Multiplot();
        for (int m = 0; m < DesignMetrics.Length; m++)
        {
            string key = DesignMetrics[m].Key;
            string title = $"{PlotKit.Name(key)} by translation design";
            if (m == 0) title += seeds > 1 ? $"\nmean of {seeds} seeds, error bars = 95 % confidence interval" : "\none seed";
            var p = PlotKit.NewPlot(title, m == DesignMetrics.Length - 1 ? "Translation design" : "", PlotKit.Label(key));
            GroupedBars(p, [.. designs], series, (d, s) => table.Rows
                .Where(r => table.Cell(r, DesignKey) == d && SeriesLabel(others, table, r) == s)
                .Select(r => double.TryParse(table.Cell(r, key), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : double.NaN)
                .Where(double.IsFinite).ToList(), DesignKey);
            if (m == 0) mp.Reset(p);
            else mp.AddPlot(p);
        }
        Simulation.Sweeps.AtomicFile.Write(path, tmp => mp.SavePng(tmp, 1200, 1500));
    }

    private static string Tail(string key) => key.Split(':', '.')[^1];

    public static string FileName(PlotSpec pl, string facet)
    {
        var sb = new StringBuilder($"{pl.Y}-vs-{Tail(pl.X)}");
        if (pl.Series.Count > 0) sb.Append("-by-").AppendJoin("-", pl.Series.Select(Tail));
        if (facet.Length > 0) sb.Append("--").Append(facet);
        var clean = new string(sb.ToString().Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
        return clean + ".png";
    }
}
