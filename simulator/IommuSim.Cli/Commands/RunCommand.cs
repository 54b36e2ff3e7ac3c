using System.CommandLine;
using System.Globalization;
using IommuSim.Simulation;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Results;
using IommuSim.Simulation.Running;
using IommuSim.Cli.Timeline;
using Spectre.Console;

namespace IommuSim.Cli.Commands;

/// <summary><c>iommusim run CONFIG</c>: one simulation, results written atomically to results/&lt;name&gt;/.</summary>
internal static class RunCommand
{
    /// <summary>Draws the run's plots into its (temporary) folder; set by the plotting code.</summary>
    internal static Action<string>? PlotRun { get; set; }

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var config = CommonOptions.ConfigArgument();
        var set = CommonOptions.Set();
        var outDir = new Option<string?>("--out") { Description = "Results folder (default results/<config name>/)" };
        var seed = new Option<ulong?>("--seed") { Description = "Override simulation:seed" };
        var noPlots = new Option<bool>("--no-plots") { Description = "Do not draw PNG plots" };
        var quiet = new Option<bool>("--quiet") { Description = "Print only the final summary line" };
        var recordTrace = new Option<string?>("--record-trace") { Description = "Write every issued request as a replayable trace (spec/trace.md)" };
        var timeline = new TimelineOptions();
        var cmd = new Command("run", "Run one simulation") { config, set, outDir, seed, noPlots, quiet, recordTrace };
        foreach (var o in timeline.All) cmd.Options.Add(o);
        cmd.SetAction(pr => CliApp.Guard(stderr, () =>
        {
            var loaded = Simulator.LoadConfig(pr.GetValue(config)!, pr.GetValue(set), pr.GetValue(seed), useEnvironment: true);
            Simulator.Preflight(loaded);
            using var session = timeline.Parse(pr);
            string dir = pr.GetValue(outDir) ?? Path.Combine("results", loaded.Config.Name);
            OutputGuard.CheckTarget(dir, pr.GetValue(outDir) is null ? $"name = {loaded.Config.Name} (results folder)" : "--out", OutputGuard.RunMarker);
            string? tracePath = pr.GetValue(recordTrace);
            if (tracePath is not null) TraceRecorder.CheckPath(tracePath, dir);
            bool interactive = !pr.GetValue(quiet) && !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out);
            using var recorder = tracePath is null ? null : new TraceRecorder(tracePath);
            RunResult result = interactive ? RunWithProgress(loaded, recorder, session)
                : Simulator.Run(loaded, observer: recorder, instrument: session is null ? null : session.Attach, preflightDone: true);
            var run = result.Output;
            recorder?.Complete();
            int onTimeline = session?.Complete(loaded) ?? 0;
            bool plots = !pr.GetValue(noPlots);
            result.WriteFolder(dir, plots ? PlotRun : null);
            stdout.WriteLine(SummaryLine(run, dir));
            if (session is not null) stdout.WriteLine($"timeline: {onTimeline} requests -> {session.Path}");
            return CliApp.Ok;
        }));
        return cmd;
    }

    private static RunResult RunWithProgress(LoadedConfig loaded, TraceRecorder? recorder, TimelineSession? session)
    {
        RunResult? result = null;
        long target = loaded.Config.Simulation.MaxRequests;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"[green]{loaded.Config.Name}[/]", maxValue: target > 0 ? target : 1);
                result = Simulator.Run(loaded, p =>
                {
                    if (target > 0) task.Value = p.Completed;
                    task.Description = string.Create(CultureInfo.InvariantCulture,
                        $"[green]{loaded.Config.Name}[/] sim {p.SimulatedNs / 1000:0.0} µs, {p.Completed:N0} req, {p.Events / Math.Max(1e-9, p.WallSeconds) / 1e6:0.0} M ev/s");
                }, recorder, session is null ? null : session.Attach, preflightDone: true);
                task.Value = task.MaxValue;
            });
        return result!;
    }

    public static string SummaryLine(RunOutput run, string dir)
    {
        var s = SummaryBuilder.Build(run);
        string F(string path) => SummaryBuilder.Flatten(s).First(kv => kv.Key == path).Value?.ToJsonString() ?? "";
        return $"{run.Config.Config.Name}: {F("requests.completed")} requests in {F("sim.simulatedNs")} ns simulated; " +
               $"{F("throughput.gbps")} Gbit/s, IOTLB miss rate {F("iotlb.missRate")}, DMA p99 {F("latencyNs.dma.p99")} ns, " +
               $"faults {F("faults.count")}; {F("sim.events")} events at {F("sim.eventsPerSecond")} ev/s -> {dir}";
    }
}
