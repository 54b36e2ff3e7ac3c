using System.CommandLine;
using IommuSim.Simulation.Sweeps;

namespace IommuSim.Cli.Commands;

/// <summary><c>iommusim merge DIR...</c>: joins the shard folders of a sweep into one sweep folder with sweep.csv and plots.</summary>
internal static class MergeCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var dirs = new Argument<string[]>("dirs") { Description = "Shard folders of one sweep (each with sweep.json and points/NNNN/)", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string?>("--out") { Description = "Write the merged sweep here (default: into the first DIR)" };
        var noPlots = new Option<bool>("--no-plots") { Description = "Write sweep.csv only" };
        var quiet = new Option<bool>("--quiet") { Description = "Print only the final summary line (the default for merge)" };
        var cmd = new Command("merge", "Join sweep shards into one sweep.csv and plots") { dirs, outDir, noPlots, quiet };
        cmd.SetAction(pr => CliApp.Guard(stderr, () =>
        {
            var r = SweepMerge.Merge(pr.GetValue(dirs)!, pr.GetValue(outDir), pr.GetValue(noPlots) ? null : SweepCommand.DrawSweepPlots);
            stdout.WriteLine($"merged {r.Points} points ({r.Copied} copied from other folders): sweep.csv and plots -> {r.Target}");
            return CliApp.Ok;
        }));
        return cmd;
    }
}
