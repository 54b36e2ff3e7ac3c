using System.Text;
using IommuSim.Hardware;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Script;

/// <summary>
/// Builds the platform a script's <c>config</c> statement names: its devices and IOMMU, and the <see cref="PlatformSpec"/>
/// the kernel sees (from <paramref name="basis"/>). Returns null and the messages to print when the config is bad.
/// </summary>
public delegate IReadOnlyList<string>? ScriptConfigLoader(string configPath, PlatformSpec basis, out Platform platform, out PlatformSpec spec);

/// <summary>
/// Runs a uAPI script (docs/uapi-script.md): parses the whole script, builds a fresh system (the platform of the
/// script's <c>config</c>, through the caller's loader, or <see cref="PlatformSpec"/> defaults), runs every call in one
/// process with one iommufd, prints one line per call and checks the <c>expect</c>s.
/// Exit: 0 all expectations held, 3 one did not, 2 the script (or its config) is malformed.
/// </summary>
public static class ScriptRunner
{
    public const int Ok = 0;
    public const int BadInput = 2;
    public const int ExpectationFailed = 3;

    /// <param name="platform">Devices and IOMMU capabilities when the script names no config (default: <see cref="PlatformSpec"/>).</param>
    /// <param name="loadConfig">Reads a <c>config</c> statement's file; without one such a script is bad input.</param>
    public static int Run(string scriptPath, TextWriter stdout, TextWriter stderr, PlatformSpec? platform = null, ScriptConfigLoader? loadConfig = null)
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
            if (loadConfig is null)
            {
                stderr.WriteLine($"{scriptPath}: `config {configPath}` needs a config loader (run the script with `iommusim uapi`)");
                return BadInput;
            }
            if (loadConfig(resolved, platform ?? new PlatformSpec(), out hw, out spec) is { } errors)
            {
                foreach (var m in errors) stderr.WriteLine(m);
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
            if (st.BindFd is not null)
                session.Vars[st.BindFd] = result.Fields.FirstOrDefault(f => f.Key == ScriptCalls.FdOutputs[st.Call]).Value ?? 0;

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
