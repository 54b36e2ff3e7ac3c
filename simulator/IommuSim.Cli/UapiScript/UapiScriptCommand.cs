using System.CommandLine;
using System.Text;
using IommuSim.Cli.Commands;
using IommuSim.Cli.Config;
using IommuSim.Hardware;
using IommuSim.Uapi;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Cli.UapiScript;

/// <summary>
/// `iommusim uapi SCRIPT` (spec/uapi-script.md): parses the whole script, builds a fresh system
/// (the platform of the script's `config`, or <see cref="PlatformSpec"/> defaults), runs every
/// call in one process with one iommufd, prints one line per call and checks the `expect`s.
/// Exit: 0 all expectations held, 3 one did not, 2 the script (or its config) is malformed.
/// </summary>
public static class UapiScriptCommand
{
    public const int Ok = 0;
    public const int BadInput = 2;
    public const int ExpectationFailed = 3;

    public static int Run(string scriptPath, TextWriter stdout, TextWriter stderr) => Run(scriptPath, stdout, stderr, null);

    /// <summary>The `uapi SCRIPT` verb, in the shape of <c>CliApp.ExtraCommands</c> (internal errors → exit 1 through <see cref="CliApp.Guard"/>).</summary>
    public static Command CreateCommand(TextWriter stdout, TextWriter stderr)
    {
        var script = new Argument<string>("SCRIPT") { Description = "uAPI script to run (spec/uapi-script.md)" };
        var cmd = new Command("uapi", "Run a uAPI script against a fresh simulated system; one result line per call") { script };
        cmd.SetAction(pr => CliApp.Guard(stderr, () => Run(pr.GetValue(script)!, stdout, stderr)));
        return cmd;
    }

    /// <param name="platform">Devices and IOMMU capabilities when the script names no config (default: <see cref="PlatformSpec"/>).</param>
    public static int Run(string scriptPath, TextWriter stdout, TextWriter stderr, PlatformSpec? platform)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(scriptPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"{scriptPath}: cannot read: {e.Message}");
            return BadInput;
        }

        string? configPath;
        List<Statement> statements;
        try
        {
            (configPath, statements) = ScriptParser.Parse(scriptPath, lines);
        }
        catch (ScriptParseException e)
        {
            stderr.WriteLine(e.Message);
            return BadInput;
        }

        PlatformSpec spec;
        Platform hw;
        if (configPath is not null)
        {
            string resolved = File.Exists(configPath) ? configPath
                : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(scriptPath)) ?? ".", configPath);
            try
            {
                var cfg = ConfigLoader.Load(resolved).Config;
                hw = new Platform(cfg.Memory, cfg.Pcie, cfg.Iommu, cfg.Translation.Design != "off", cfg.Simulation.Seed);
                foreach (var d in cfg.Devices) hw.AddDevice(d);
                spec = PlatformPort.SpecFor(hw, (platform ?? new PlatformSpec()) with { SecondStageLevels = cfg.Translation.Stage2.Levels });
            }
            catch (ConfigError e)
            {
                foreach (var m in e.Messages) stderr.WriteLine(m);
                return BadInput;
            }
        }
        else
        {
            spec = platform ?? new PlatformSpec();
            hw = PlatformPort.CreatePlatform(spec);
        }

        var session = new ScriptSession(new IommuKernel(new PlatformPort(hw), spec));
        bool allHeld = true;
        foreach (var st in statements)
        {
            CallResult result;
            try
            {
                result = ScriptCalls.Table[st.Call].Run(session, st);
            }
            catch (ScriptValueException e)
            {
                stderr.WriteLine($"{scriptPath}:{e.Line}: {e.Message}");
                return BadInput;
            }
            if (st.Bind is not null && result.Main is ulong main) session.Vars[st.Bind] = main;
            if (st.Bind is not null && result.Main is null) session.Vars[st.Bind] = 0;

            var line = new StringBuilder();
            line.Append(st.Line).Append(": ").Append(st.Call).Append(" -> ").Append(result.Word);
            foreach (var (k, text, _) in result.Fields) line.Append(' ').Append(k).Append('=').Append(text);
            if (st.Expect is not null && Mismatch(st.Expect, result, session) is string why)
            {
                allHeld = false;
                line.Append("   MISMATCH: ").Append(why);
            }
            stdout.WriteLine(line.ToString());
        }
        return allHeld ? Ok : ExpectationFailed;
    }

    /// <summary>Null when the result satisfies the expectation, else what differs.</summary>
    private static string? Mismatch(Expectation e, CallResult r, ScriptSession session)
    {
        if (e.Result != r.Word) return $"expected {e.Result}";
        foreach (var (key, want) in e.Fields)
        {
            var got = r.Fields.FirstOrDefault(f => f.Key == key);
            if (got.Key is null) return $"expected {key}={want}, which this call does not report";
            ulong w = 0;
            bool wantNum = want.StartsWith('$') ? session.Vars.TryGetValue(want[1..], out w) : ScriptParser.TryParseNumber(want, out w);
            if (wantNum && got.Value is ulong g ? g != w : !string.Equals(got.Text, want, StringComparison.Ordinal))
                return $"expected {key}={want}";
        }
        return null;
    }
}
