using System.CommandLine;
using IommuSim.Simulation.Config;
using IommuSim.Workloads.Trace;

namespace IommuSim.Cli.Commands;

/// <summary>The <c>iommusim</c> command line (spec/cli.md). Exit codes: 0 success, 2 bad input, 1 internal error.</summary>
public static class CliApp
{
    public const int Ok = 0;
    public const int InternalError = 1;
    public const int BadInput = 2;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("IommuSim: a discrete-event simulator of DMA through an IOMMU, programmed through a model of Linux iommufd.");
        root.Subcommands.Add(RunCommand.Create(stdout, stderr));
        root.Subcommands.Add(CheckCommand.Create(stdout, stderr));
        root.Subcommands.Add(BenchCommand.Create(stdout, stderr));
        root.Subcommands.Add(UapiCommand.Create(stdout, stderr));
        root.Subcommands.Add(SweepCommand.Create(stdout, stderr));
        root.Subcommands.Add(MergeCommand.Create(stdout, stderr));
        root.Subcommands.Add(PlotCommand.Create(stdout, stderr));
        root.Subcommands.Add(Timeline.TimelinePlotCommand.Create(stdout, stderr));
        RunCommand.PlotRun ??= Plots.RunPlots.Draw;
        foreach (var extra in ExtraCommands) root.Subcommands.Add(extra(stdout, stderr));

        var parse = root.Parse(args, new ParserConfiguration());
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) stderr.WriteLine($"error: {Humanize(e.Message)}");
            stderr.WriteLine($"usage: iommusim <{string.Join("|", root.Subcommands.Select(c => c.Name))}> [options]   (iommusim --help for details)");
            return BadInput;
        }
        if (OptionSwallowingOption(parse) is { } swallowed)
        {
            stderr.WriteLine(swallowed);
            return BadInput;
        }
        var invocation = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
        return parse.Invoke(invocation);
    }

    /// <summary>
    /// System.CommandLine lets an option that takes a value swallow the next option (<c>--timeline --quiet</c> would
    /// write a timeline to a file named "--quiet"); a value that is one of the command's option names is refused.
    /// </summary>
    internal static string? OptionSwallowingOption(ParseResult parse)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var o in parse.CommandResult.Command.Options)
        {
            names.Add(o.Name);
            foreach (var a in o.Aliases) names.Add(a);
        }
        foreach (var child in parse.CommandResult.Children)
            if (child is System.CommandLine.Parsing.OptionResult r)
                foreach (var t in r.Tokens)
                    if (names.Contains(t.Value))
                        return $"error: {r.Option.Name} {t.Value}: expected a value, got the option {t.Value} (write ./{t.Value} for a file of that name)";
        return null;
    }

    /// <summary>System.CommandLine names .NET types in its conversion errors ("System.Nullable`1[System.Int32]"); say what is expected instead.</summary>
    internal static string Humanize(string message)
    {
        var m = System.Text.RegularExpressions.Regex.Match(message, @"^Cannot parse argument '(?<v>.*)' for (?<what>option|command|argument) '(?<o>[^']*)' as expected type '(?<t>[^']*)'");
        if (!m.Success) return message;
        string t = m.Groups["t"].Value;
        string expected = t.Contains("Int32", StringComparison.Ordinal) || t.Contains("Int64", StringComparison.Ordinal)
            ? (t.Contains("UInt", StringComparison.Ordinal) ? "a non-negative integer" : "an integer")
            : t.Contains("Double", StringComparison.Ordinal) ? "a number"
            : t.Contains("Boolean", StringComparison.Ordinal) ? "true or false" : "a value of another form";
        return $"{m.Groups["o"].Value} {m.Groups["v"].Value}: expected {expected}";
    }

    /// <summary>Verbs contributed by other parts of the CLI (sweep, merge, plot, uapi).</summary>
    internal static readonly List<Func<TextWriter, TextWriter, Command>> ExtraCommands = [];

    /// <summary>Runs a verb body with the CLI's error conventions: bad input → 2 with one line per problem, bugs → 1 with a stack trace.</summary>
    public static int Guard(TextWriter stderr, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (ConfigError e)
        {
            foreach (var m in e.Messages) stderr.WriteLine(m);
            return BadInput;
        }
        catch (TraceFormatException e)
        {
            stderr.WriteLine(e.Message);
            return BadInput;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"internal error: {e}");
            return InternalError;
        }
    }
}
