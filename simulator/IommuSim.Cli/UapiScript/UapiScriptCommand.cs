using System.CommandLine;
using IommuSim.Cli.Commands;
using IommuSim.Simulation.Config;
using IommuSim.Hardware;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Script;

namespace IommuSim.Cli.UapiScript;

/// <summary>
/// `iommusim uapi SCRIPT` (docs/uapi-script.md): runs the script with <see cref="ScriptRunner"/>, giving it the
/// CLI's config loader for a `config` statement. Exit: 0 all expectations held, 3 one did not, 2 the script
/// (or its config) is malformed.
/// </summary>
public static class UapiScriptCommand
{
    public const int Ok = ScriptRunner.Ok;
    public const int BadInput = ScriptRunner.BadInput;
    public const int ExpectationFailed = ScriptRunner.ExpectationFailed;

    public static int Run(string scriptPath, TextWriter stdout, TextWriter stderr) => Run(scriptPath, stdout, stderr, null);

    /// <summary>The `uapi SCRIPT` verb, in the shape of <c>CliApp.ExtraCommands</c> (internal errors → exit 1 through <see cref="CliApp.Guard"/>).</summary>
    public static Command CreateCommand(TextWriter stdout, TextWriter stderr)
    {
        var script = new Argument<string>("SCRIPT") { Description = "uAPI script to run (docs/uapi-script.md)" };
        var cmd = new Command("uapi", "Run a uAPI script against a fresh simulated system; one result line per call") { script };
        cmd.SetAction(pr => CliApp.Guard(stderr, () => Run(pr.GetValue(script)!, stdout, stderr)));
        return cmd;
    }

    /// <param name="platform">Devices and IOMMU capabilities when the script names no config (default: <see cref="PlatformSpec"/>).</param>
    public static int Run(string scriptPath, TextWriter stdout, TextWriter stderr, PlatformSpec? platform)
        => ScriptRunner.Run(scriptPath, stdout, stderr, platform, LoadConfig);

    /// <summary>A simulation config's platform: its memory, PCIe, IOMMU and devices, and its stage-2 levels.</summary>
    private static IReadOnlyList<string>? LoadConfig(string path, PlatformSpec basis, out Platform hw, out PlatformSpec spec)
    {
        hw = null!;
        spec = null!;
        try
        {
            var cfg = ConfigLoader.Load(path).Config;
            hw = new Platform(cfg.Memory, cfg.Pcie, cfg.Iommu, Uapi.Designs.TranslationDesigns.Get(cfg.Translation.Design).IommuOnPath, cfg.Simulation.Seed);
            foreach (var d in cfg.Devices) hw.AddDevice(d);
            spec = PlatformPort.SpecFor(hw, basis with { SecondStageLevels = cfg.Translation.Stage2.Levels });
            return null;
        }
        catch (ConfigError e)
        {
            return e.Messages;
        }
    }
}
