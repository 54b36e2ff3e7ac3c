using System.CommandLine;
using System.Globalization;
using IommuSim.Cli.Config;
using IommuSim.Cli.Sweeps;

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
        var cmd = new Command("sweep", "Run a parameter sweep") { sweep, jobs, shard, outDir, resume, quiet, pointPlots, noPlots };
        cmd.SetAction(pr => CliApp.Guard(stderr, () =>
        {
            var s = ShardSpec.Parse(pr.GetValue(shard));
            int j = pr.GetValue(jobs) ?? Environment.ProcessorCount;
            if (j < 1) throw new ConfigError($"sweep error: --jobs {j}: must be at least 1");
            var plan = SweepPlan.Prepare(pr.GetValue(sweep)!);
            string dir = pr.GetValue(outDir) ?? Path.Combine("results", plan.Spec.Name);
            bool interactive = !pr.GetValue(quiet) && !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out);
            var r = SweepRunner.Run(plan, new SweepOptions(dir, j, s, pr.GetValue(resume), interactive, pr.GetValue(pointPlots), !pr.GetValue(noPlots)));
            string shardText = s.Count > 1 ? $" shard {s}:" : "";
            string tail = r.Complete
                ? $"sweep.csv and plots -> {dir}"
                : $"{r.Total - CountFinished(dir, plan)} points still missing; run the other shards, then iommusim merge";
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{plan.Spec.Name}:{shardText} {r.Ran} points run, {r.Skipped} skipped (of {r.Owned} in this shard, {r.Total} in the sweep) in {r.WallSeconds:0.00} s with {Math.Min(j, Math.Max(1, r.Ran))} jobs; {tail}"));
            return CliApp.Ok;
        }));
        return cmd;
    }

    private static int CountFinished(string dir, SweepPlan plan) => plan.Points.Count(p => File.Exists(SweepRunner.SummaryPath(dir, p.Index)));
}
