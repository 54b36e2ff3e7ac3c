using System.CommandLine;
using IommuSim.Simulation.Config;

namespace IommuSim.Cli.Commands;

/// <summary><c>iommusim check CONFIG [--set K=V]...</c>: validate and print the resolved config; runs nothing.</summary>
internal static class CheckCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var config = CommonOptions.ConfigArgument();
        var set = CommonOptions.Set();
        var cmd = new Command("check", "Validate a config and print the resolved config; runs nothing") { config, set };
        cmd.SetAction(pr => CliApp.Guard(stderr, () =>
        {
            var loaded = ConfigLoader.Load(pr.GetValue(config)!, pr.GetValue(set));
            Simulation.Simulator.Preflight(loaded);
            stdout.Write(loaded.ResolvedJson);
            stdout.WriteLine($"# config ok: {loaded.SourcePath} (configHash {loaded.Hash})");
            return CliApp.Ok;
        }));
        return cmd;
    }
}
