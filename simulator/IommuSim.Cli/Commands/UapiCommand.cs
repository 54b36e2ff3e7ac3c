using System.CommandLine;
using IommuSim.Cli.UapiScript;

namespace IommuSim.Cli.Commands;

/// <summary><c>iommusim uapi SCRIPT</c>: run a uAPI call script (spec/uapi-script.md); exit 0 / 3 (an expect failed) / 2 (malformed).</summary>
internal static class UapiCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var script = new Argument<string>("script") { Description = "uAPI script (configs/uapi/*.uapi)" };
        var cmd = new Command("uapi", "Run a uAPI script against a fresh simulated system, one result line per call") { script };
        cmd.SetAction(pr => CliApp.Guard(stderr, () => UapiScriptCommand.Run(pr.GetValue(script)!, stdout, stderr)));
        return cmd;
    }
}
