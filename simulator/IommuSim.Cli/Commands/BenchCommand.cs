using System.CommandLine;
using IommuSim.Cli.Running;

namespace IommuSim.Cli.Commands;

/// <summary><c>iommusim bench</c>: the built-in speed benchmark.</summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var quick = new Option<bool>("--quick") { Description = "A shorter run (for smoke tests)" };
        var cmd = new Command("bench", "Measure simulator speed: scheduler events/s (hold model) and translated TLPs/s") { quick };
        cmd.SetAction(pr => CliApp.Guard(stderr, () => Bench.Run(stdout, pr.GetValue(quick))));
        return cmd;
    }
}
