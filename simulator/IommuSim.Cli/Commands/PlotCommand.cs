using System.CommandLine;
using IommuSim.Simulation.Config;
using IommuSim.Cli.Plots;
using IommuSim.Simulation.Sweeps;

namespace IommuSim.Cli.Commands;

/// <summary><c>iommusim plot DIR</c>: redraws the plots of a run folder or a sweep folder from its files.</summary>
internal static class PlotCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var dir = new Argument<string>("dir") { Description = "A run folder (latency.csv, timeseries.csv) or a sweep folder (sweep.json, sweep.csv)" };
        var measured = new Option<string?>("--measured") { Description = "A measured CSV (docs/calibration.md) to draw over a sweep's lines, with a residual table" };
        var cmd = new Command("plot", "Redraw the plots of a run or sweep folder") { dir, measured };
        cmd.SetAction(pr => CliApp.Guard(stderr, () =>
        {
            string d = pr.GetValue(dir)!;
            if (pr.GetValue(measured) is string m)
            {
                stdout.WriteLine(DrawMeasured(d, m));
                return CliApp.Ok;
            }
            stdout.WriteLine(Redraw(d));
            return CliApp.Ok;
        }));
        return cmd;
    }

    /// <summary>Measured points over a sweep's simulated lines, plus NAME.residuals.csv/.md (<see cref="MeasuredOverlay"/>).</summary>
    internal static string DrawMeasured(string d, string measured)
    {
        string sweepJson = Path.Combine(d, SweepRunner.SweepJson), csv = Path.Combine(d, SweepRunner.SweepCsv);
        if (!File.Exists(sweepJson) || !File.Exists(csv)) throw new ConfigError($"plot error: {d}: --measured needs a sweep folder with sweep.json and sweep.csv");
        var spec = SweepSpec.Parse(sweepJson, File.ReadAllText(sweepJson), resolved: true);
        var r = MeasuredOverlay.Draw(d, spec, SweepTable.ParseCsv(File.ReadAllText(csv)), measured);
        var summary = r.Rows.GroupBy(x => x.Y).Select(g => $"{g.Key} median |residual| {MeasuredOverlay.MedianAbs(g):0.0} % over {g.Count()} points");
        return $"{string.Join("; ", summary)}; {string.Join(", ", r.Files)} -> {d}";
    }

    internal static string Redraw(string d)
    {
        if (!Directory.Exists(d)) throw new ConfigError($"plot error: {d}: no such folder");
        string sweepJson = Path.Combine(d, SweepRunner.SweepJson);
        if (File.Exists(sweepJson))
        {
            var spec = SweepSpec.Parse(sweepJson, File.ReadAllText(sweepJson), resolved: true);
            string csv = Path.Combine(d, SweepRunner.SweepCsv);
            SweepTable table;
            if (File.Exists(csv)) table = SweepTable.ParseCsv(File.ReadAllText(csv));
            else
            {
                var points = spec.Points();
                var missing = points.Where(p => !File.Exists(SweepRunner.SummaryPath(d, p.Index))).Select(p => p.Index).ToList();
                if (missing.Count > 0) throw new ConfigError($"plot error: {d}: no sweep.csv and {missing.Count} points missing ({SweepMerge.Ranges(missing)}); run iommusim merge first");
                table = SweepRunner.WriteResults(d, spec, points);
            }
            foreach (var c in spec.VaryKeys.Concat(spec.Plots.Select(p => p.Y)))
                if (!table.Has(c)) throw new ConfigError($"plot error: {csv}: no column {c}");
            var files = SweepPlots.Draw(d, spec, table);
            return $"{files.Count} sweep plots -> {d}";
        }
        if (File.Exists(Path.Combine(d, "latency.csv")))
        {
            RunPlots.Draw(d);
            return $"run plots ({RunPlots.LatencyCdf}, {RunPlots.MissRate}, {RunPlots.WalkReads}) -> {d}";
        }
        throw new ConfigError($"plot error: {d}: neither a run folder (latency.csv) nor a sweep folder (sweep.json)");
    }
}
