using System.Globalization;
using System.Text;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Sweeps;
using IommuSim.Engine.Units;
using ScottPlot;

namespace IommuSim.Cli.Plots;

/// <summary>
/// <c>iommusim plot DIR --measured FILE.csv</c>: holds a sweep against measurements. The measured CSV
/// (format in docs/calibration.md) names its columns like sweep.csv: the first column is the x (a
/// vary key of the sweep), further vary-key columns select the matching points (series), and every
/// other column is a numeric summary key (a y). Each measured value is compared with the mean over
/// seeds of the points with the same x and series values; the other vary keys (if any) become facets.
/// Writes, into DIR, <c>NAME.residuals.csv</c>, <c>NAME.residuals.md</c> and one figure per y and
/// facet, <c>NAME.Y.png</c> (simulated lines, measured markers), NAME being the measured file's name.
/// </summary>
public static class MeasuredOverlay
{
    public sealed record Residual(string Facet, string Series, string X, string Y, double Measured, double Simulated)
    {
        public double Percent => (Simulated - Measured) / Measured * 100;
    }

    public sealed record Result(List<Residual> Rows, List<string> Files);

    public static Result Draw(string dir, SweepSpec spec, SweepTable table, string measuredPath)
    {
        if (!File.Exists(measuredPath)) throw new ConfigError($"plot error: {measuredPath}: no such file");
        var (header, rows) = Parse(measuredPath);
        var vary = spec.VaryKeys.ToList();
        string xKey = header[0];
        if (!vary.Contains(xKey, StringComparer.Ordinal))
            throw new ConfigError($"plot error: {measuredPath}: first column {xKey}: must be a vary key of the sweep ({string.Join(", ", vary)})");
        var match = new List<int>();
        var ys = new List<int>();
        for (int c = 1; c < header.Length; c++)
        {
            if (header[c] == xKey) throw new ConfigError($"plot error: {measuredPath}: column {header[c]} appears twice");
            if (vary.Contains(header[c], StringComparer.Ordinal)) match.Add(c);
            else if (table.Has(header[c]) && !IsText(table, header[c])) ys.Add(c);
            else throw new ConfigError($"plot error: {measuredPath}: column {header[c]}: neither a vary key nor a numeric column of sweep.csv");
        }
        if (ys.Count == 0) throw new ConfigError($"plot error: {measuredPath}: no measured column (a summary key such as throughput.gbps)");
        // Vary keys the file does not name split the comparison into facets (one-value keys do not).
        var facetKeys = vary.Where(k => k != xKey && !match.Any(c => header[c] == k) && table.Rows.Select(r => table.Cell(r, k)).Distinct().Count() > 1).ToList();

        var residuals = new List<Residual>();
        foreach (var (line, cells) in rows)
        {
            var points = table.Rows.Where(r => Same(table.Cell(r, xKey), cells[0]) && match.All(c => Same(table.Cell(r, header[c]), cells[c]))).ToList();
            string series = points.Count > 0 ? SeriesOf(match.Select(c => header[c]).ToList(), table, points[0]) : "";
            foreach (var y in ys)
            {
                if (cells[y].Length == 0) continue;
                if (!TryNum(cells[y], out double measured) || measured == 0)
                    throw new ConfigError($"plot error: {measuredPath}:{line}: {header[y]} = {cells[y]}: must be a non-zero number");
                foreach (var facet in points.GroupBy(r => FacetText(facetKeys, table, r)))
                {
                    var sims = facet.Select(r => table.Cell(r, header[y])).Where(s => TryNum(s, out _)).Select(s => Num(s)).ToList();
                    if (sims.Count > 0) residuals.Add(new Residual(facet.Key, series, cells[0], header[y], measured, sims.Average()));
                }
            }
        }
        if (residuals.Count == 0) throw new ConfigError($"plot error: {measuredPath}: no row matches a point of the sweep in {dir} (compare the x and series values with sweep.csv)");

        string name = Path.GetFileNameWithoutExtension(measuredPath);
        var files = new List<string> { name + ".residuals.csv", name + ".residuals.md" };
        AtomicFile.WriteAllText(Path.Combine(dir, files[0]), Csv(xKey, residuals));
        AtomicFile.WriteAllText(Path.Combine(dir, files[1]), Markdown(xKey, measuredPath, residuals));
        foreach (var g in residuals.GroupBy(r => (r.Y, r.Facet)))
        {
            string file = $"{name}.{g.Key.Y}{(g.Key.Facet.Length > 0 ? "." + Safe(g.Key.Facet) : "")}.png";
            Figure(Path.Combine(dir, file), xKey, g.Key.Y, g.Key.Facet, g.ToList(), table, match.Select(c => header[c]).ToList(), facetKeys);
            files.Add(file);
        }
        return new Result(residuals, files);
    }

    /// <summary>Median of the absolute residuals (percent).</summary>
    public static double MedianAbs(IEnumerable<Residual> rows)
    {
        var v = rows.Select(r => Math.Abs(r.Percent)).Order().ToList();
        if (v.Count == 0) return double.NaN;
        return v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
    }

    private static (string[] Header, List<(int Line, string[] Cells)> Rows) Parse(string path)
    {
        string[]? header = null;
        var rows = new List<(int, string[])>();
        int n = 0;
        foreach (string raw in File.ReadLines(path))
        {
            n++;
            string l = raw.Trim();
            if (l.Length == 0 || l[0] == '#') continue;
            var cells = l.Split(',').Select(c => c.Trim().Trim('"')).ToArray();
            if (header is null)
            {
                if (cells.Any(c => c.Length == 0)) throw new ConfigError($"plot error: {path}:{n}: empty column name in the header");
                header = cells;
                continue;
            }
            if (cells.Length != header.Length) throw new ConfigError($"plot error: {path}:{n}: {cells.Length} fields, the header has {header.Length}");
            if (cells[0].Length == 0) throw new ConfigError($"plot error: {path}:{n}: no value for {header[0]}");
            rows.Add((n, cells));
        }
        if (header is null) throw new ConfigError($"plot error: {path}: no header line");
        if (header.Length < 2) throw new ConfigError($"plot error: {path}: needs an x column and at least one measured column");
        if (rows.Count == 0) throw new ConfigError($"plot error: {path}: no data rows");
        return (header, rows);
    }

    private static bool IsText(SweepTable t, string col) => t.Rows.Any(r => t.Cell(r, col) is { Length: > 0 } s && !TryNum(s, out _));

    /// <summary>Values match as numbers, as byte sizes ("64KiB" = 65536) or as text (case-insensitive).</summary>
    internal static bool Same(string a, string b)
    {
        if (TryValue(a, out double x) && TryValue(b, out double y)) return Math.Abs(x - y) <= 1e-9 * Math.Max(1, Math.Abs(x));
        return string.Equals(a.Trim(), b.Trim(), StringComparison.OrdinalIgnoreCase);
    }

    private static bool TryValue(string s, out double v)
    {
        if (TryNum(s, out v)) return true;
        if (ByteSize.TryParse(s, out var b, out _)) { v = b.Bytes; return true; }
        return false;
    }

    private static bool TryNum(string s, out double v) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v) && double.IsFinite(v);
    private static double Num(string s) => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);
    private static string F(double v, string fmt = "0.###") => v.ToString(fmt, CultureInfo.InvariantCulture);

    private static string FacetText(List<string> keys, SweepTable t, string[] r)
        => string.Join(", ", keys.Select(k => $"{PlotKit.ShortName(k)} = {t.Cell(r, k)}"));

    private static string Safe(string s) => new(s.Select(c => char.IsLetterOrDigit(c) || c is '.' or '-' ? c : '_').ToArray());

    private static string Csv(string xKey, List<Residual> rows)
    {
        var sb = new StringBuilder("facet,series,").Append(xKey).Append(",key,measured,simulated,residualPercent\n");
        foreach (var r in rows)
            sb.Append('"').Append(r.Facet).Append("\",\"").Append(r.Series).Append("\",").Append(r.X).Append(',').Append(r.Y).Append(',')
              .Append(F(r.Measured, "0.######")).Append(',').Append(F(r.Simulated, "0.######")).Append(',').Append(F(r.Percent, "0.00")).Append('\n');
        return sb.ToString();
    }

    private static string Markdown(string xKey, string measuredPath, List<Residual> rows)
    {
        var sb = new StringBuilder();
        sb.Append("# Residuals against ").Append(Path.GetFileName(measuredPath)).Append("\n\n");
        sb.Append("Residual = (simulated − measured) / measured; simulated = mean over seeds.\n\n");
        sb.Append("| key | facet | series | points | median abs residual | max abs residual |\n|---|---|---|---:|---:|---:|\n");
        foreach (var g in rows.GroupBy(r => (r.Y, r.Facet, r.Series)))
            sb.Append($"| `{g.Key.Y}` | {g.Key.Facet} | {g.Key.Series} | {g.Count()} | {F(MedianAbs(g), "0.0")} % | {F(g.Max(r => Math.Abs(r.Percent)), "0.0")} % |\n");
        foreach (var g in rows.GroupBy(r => r.Y))
            sb.Append($"| `{g.Key}` | all | all | {g.Count()} | {F(MedianAbs(g), "0.0")} % | {F(g.Max(r => Math.Abs(r.Percent)), "0.0")} % |\n");
        sb.Append("\n| key | facet | series | ").Append(xKey).Append(" | measured | simulated | residual |\n|---|---|---|---:|---:|---:|---:|\n");
        foreach (var r in rows)
            sb.Append($"| `{r.Y}` | {r.Facet} | {r.Series} | {r.X} | {F(r.Measured)} | {F(r.Simulated)} | {F(r.Percent, "+0.0;-0.0;0.0")} % |\n");
        return sb.ToString();
    }

    private static void Figure(string path, string xKey, string yKey, string facet, List<Residual> rows, SweepTable table, List<string> seriesKeys, List<string> facetKeys)
    {
        var xsAll = new List<double>();
        string title = $"{PlotKit.Name(yKey)}: simulated (lines) and measured (open markers)";
        if (facet.Length > 0) title += "\n" + facet;
        bool size = PlotKit.IsSizeKey(xKey);
        var p = PlotKit.NewPlot(title, PlotKit.Label(xKey) + (size && !PlotKit.Label(xKey).Contains("(bytes)", StringComparison.Ordinal) ? " (bytes)" : ""), PlotKit.Label(yKey));
        var series = rows.Select(r => r.Series).Distinct().ToList();
        foreach (var r in rows) if (TryValue(r.X, out double v)) xsAll.Add(v);
        bool logX = xsAll.Count > 0 && xsAll.Min() > 0 && xsAll.Max() / xsAll.Min() >= 100;
        double Tx(double x) => logX ? Math.Log10(x) : x;
        double ymax = 0;
        for (int s = 0; s < series.Count; s++)
        {
            var color = PlotKit.ColorOf(s);
            // The simulated line: every sweep point of this series and facet, mean over seeds.
            var sim = table.Rows
                .Where(r => SeriesOf(seriesKeys, table, r) == series[s] && FacetText(facetKeys, table, r) == facet && TryValue(table.Cell(r, xKey), out _) && TryNum(table.Cell(r, yKey), out _))
                .GroupBy(r => Value(table.Cell(r, xKey)))
                .Select(g => (x: g.Key, y: g.Average(r => Num(table.Cell(r, yKey))))).OrderBy(t => t.x).Where(t => !logX || t.x > 0).ToList();
            string label = series[s].Length == 0 ? "" : series[s];
            if (sim.Count > 0)
            {
                var line = p.Add.Scatter(sim.Select(t => Tx(t.x)).ToArray(), sim.Select(t => t.y).ToArray(), color);
                line.LineWidth = 2;
                line.MarkerSize = 4;
                line.LegendText = (label.Length > 0 ? label + ", " : "") + "simulated";
                ymax = Math.Max(ymax, sim.Max(t => t.y));
            }
            var meas = rows.Where(r => r.Series == series[s] && TryValue(r.X, out double v) && (!logX || v > 0)).Select(r => (x: Value(r.X), y: r.Measured)).OrderBy(t => t.x).ToList();
            if (meas.Count == 0) continue;
            var m = p.Add.Scatter(meas.Select(t => Tx(t.x)).ToArray(), meas.Select(t => t.y).ToArray(), color);
            m.LineWidth = 0;
            m.MarkerSize = 11;
            m.MarkerShape = s % 2 == 0 ? MarkerShape.OpenCircle : MarkerShape.OpenSquare;
            m.MarkerLineWidth = 2;
            m.LegendText = (label.Length > 0 ? label + ", " : "") + "measured";
            ymax = Math.Max(ymax, meas.Max(t => t.y));
        }
        if (logX)
        {
            p.Axes.Bottom.TickGenerator = PlotKit.LogTicks(xsAll.Min(), xsAll.Max(), size);
            var (lo, hi) = PlotKit.LogLimits(xsAll.Min(), xsAll.Max());
            p.Axes.SetLimitsX(lo, hi);
            p.XLabel(p.Axes.Bottom.Label.Text + ", log scale");
        }
        p.Axes.SetLimitsY(0, ymax <= 0 ? 1 : ymax * 1.08);
        p.ShowLegend(Edge.Right);
        PlotKit.Save(p, path, PlotKit.Width + 200);
    }

    private static double Value(string s) => TryValue(s, out double v) ? v : double.NaN;

    private static string SeriesOf(List<string> keys, SweepTable t, string[] r)
        => string.Join(", ", keys.Select(k => $"{PlotKit.ShortName(k)} = {t.Cell(r, k)}"));
}
