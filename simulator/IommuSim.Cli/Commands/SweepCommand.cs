using System.CommandLine;
using System.Globalization;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Results;
using IommuSim.Cli.Plots;
using IommuSim.Simulation.Sweeps;
using Spectre.Console;

namespace IommuSim.Cli.Commands;

/// <summary><c>iommusim sweep SWEEP.json</c>: a parameter sweep, points in parallel, shardable (docs/sweeps.md).</summary>
internal static class SweepCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var sweep = new Argument<string>("sweep") { Description = "Sweep file (JSON: name, base, vary, seeds, plots; see spec/config.md)" };
        var jobs = new Option<int?>("--jobs") { Description = "Points run at once (default: all cores)" };
        var shard = new Option<string?>("--shard") { Description = "Run only the points whose index mod N = I (I/N, for example 0/4)" };
        var outDir = new Option<string?>("--out") { Description = "Sweep folder (default results/<sweep name>/)" };
        var resume = new Option<bool>("--resume") { Description = "Skip points whose summary.json already exists" };
        var quiet = new Option<bool>("--quiet") { Description = "Print only the final summary line" };
        var pointPlots = new Option<bool>("--point-plots") { Description = "Also draw each point's run plots (slower)" };
        var noPlots = new Option<bool>("--no-plots") { Description = "Do not draw the sweep's plots (sweep.csv only)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Check the whole sweep and list its points; run nothing, write nothing" };
        var cmd = new Command("sweep", "Run a parameter sweep") { sweep, jobs, shard, outDir, resume, quiet, pointPlots, noPlots, dryRun };
        cmd.SetAction(pr => CliApp.Guard(stderr, () =>
        {
            var s = ShardSpec.Parse(pr.GetValue(shard));
            int j = pr.GetValue(jobs) ?? Environment.ProcessorCount;
            if (j < 1) throw new ConfigError($"sweep error: --jobs {j}: must be at least 1");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var plan = SweepPlan.Prepare(pr.GetValue(sweep)!, jobs: j);
            double prepare = clock.Elapsed.TotalSeconds;
            if (pr.GetValue(dryRun))
            {
                DryRun(stdout, plan, s, pr.GetValue(quiet));
                return CliApp.Ok;
            }
            string dir = pr.GetValue(outDir) ?? Path.Combine("results", plan.Spec.Name);
            OutputGuard.CheckTarget(dir, pr.GetValue(outDir) is null ? $"name = {plan.Spec.Name} (sweep folder)" : "--out", OutputGuard.SweepMarker);
            bool interactive = !pr.GetValue(quiet) && !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out);
            var r = SweepRunner.Run(plan, new SweepOptions(dir, j, s, pr.GetValue(resume))
            {
                PointExtra = pr.GetValue(pointPlots) ? RunPlots.Draw : null,
                ResultsExtra = pr.GetValue(noPlots) ? null : DrawSweepPlots,
                Progress = interactive ? ShowProgress : null,
            });
            string shardText = s.Count > 1 ? $" shard {s}:" : "";
            string tail = r.Complete
                ? (pr.GetValue(noPlots) ? $"sweep.csv -> {dir}" : $"sweep.csv and plots -> {dir}")
                : $"{r.Total - CountFinished(dir, plan)} points still missing; run the other shards, then iommusim merge";
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{plan.Spec.Name}:{shardText} {r.Ran} points run, {r.Skipped} skipped (of {r.Owned} in this shard, {r.Total} in the sweep) in {prepare + r.WallSeconds:0.00} s with {Math.Min(j, Math.Max(1, r.Ran))} jobs (checking {prepare:0.00} s, points {r.PointsSeconds:0.00} s, sweep.csv and plots {r.ResultsSeconds:0.00} s); {tail}"));
            return CliApp.Ok;
        }));
        return cmd;
    }

    /// <summary>The sweep's PNG plots, drawn after sweep.csv (sweep and merge).</summary>
    internal static void DrawSweepPlots(string dir, SweepSpec spec, SweepTable table) => SweepPlots.Draw(dir, spec, table);

    /// <summary>A progress bar of the sweep's points while the library's workers run.</summary>
    internal static void ShowProgress(SweepProgress p)
    {
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"[green]{Markup.Escape(p.Name)}[/]", maxValue: p.Total);
                void Update()
                {
                    int d = p.Done();
                    task.Value = d;
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"[green]{Markup.Escape(p.Name)}[/] {d}/{p.Total} points, {p.Jobs} jobs");
                }
                while (p.Running())
                {
                    Update();
                    Thread.Sleep(100);
                }
                Update();
            });
    }

    private static void DryRun(TextWriter stdout, SweepPlan plan, ShardSpec shard, bool quiet)
    {
        var spec = plan.Spec;
        if (!quiet)
            foreach (var p in plan.Points.Where(p => shard.Owns(p.Index)))
                stdout.WriteLine($"{p.FolderName}  seed={p.Seed.ToString(CultureInfo.InvariantCulture)}  {string.Join("  ", p.Values.Select(v => $"{v.Key}={v.Value}"))}");
        string shape = string.Join(" × ", spec.Vary.Select(v => v.Value.Count.ToString(CultureInfo.InvariantCulture)).Append($"{spec.Seeds.Count.ToString(CultureInfo.InvariantCulture)} seeds"));
        int owned = plan.Points.Count(p => shard.Owns(p.Index));
        stdout.WriteLine($"{spec.Name}: valid; {plan.Points.Count} points ({shape}), {owned} in shard {shard}; base {plan.BasePath}; nothing run");
    }

    private static int CountFinished(string dir, SweepPlan plan) => plan.Points.Count(p => File.Exists(SweepRunner.SummaryPath(dir, p.Index)));
}
