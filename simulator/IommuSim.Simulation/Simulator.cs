using System.Text.Json.Nodes;
using IommuSim.Engine.Stats;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Results;
using IommuSim.Simulation.Running;
using IommuSim.Simulation.Sweeps;

namespace IommuSim.Simulation;

/// <summary>
/// The library's entry point (docs/library.md): load and validate a config, run it, read or write
/// its results, run a sweep — what <c>iommusim run</c> and <c>iommusim sweep</c> do, without the CLI.
/// Bad input throws <see cref="ConfigError"/> (one message per problem, naming file and key) or
/// <see cref="Workloads.Trace.TraceFormatException"/>; a run is single-threaded and deterministic.
/// </summary>
public static class Simulator
{
    /// <summary>Loads, resolves and validates a config file, as <c>iommusim run PATH --set KEY=VALUE ...</c> does.</summary>
    /// <param name="overrides"><c>KEY=VALUE</c> strings in the <c>--set</c> syntax (e.g. <c>simulation:maxRequests=5000</c>).</param>
    /// <param name="useEnvironment">Also apply <c>IOMMUSIM__</c> environment variables (the CLI does; off by default here, so that code gets what it asks for).</param>
    public static LoadedConfig LoadConfig(string path, IEnumerable<string>? overrides = null, ulong? seed = null, bool useEnvironment = false)
        => ConfigLoader.Load(path, overrides, seed, useEnvironment: useEnvironment);

    /// <summary>Checks what needs the files a config names (traces: each read once), as <c>iommusim check</c> does; runs nothing.</summary>
    public static void Preflight(LoadedConfig config) => SimulationRunner.Preflight(config);

    /// <summary>Checks what needs the files a config names (traces), then builds the system and runs it to the end.</summary>
    /// <param name="progress">Called about every 200 ms of wall-clock time while the run goes on.</param>
    /// <param name="observer">Sees every issued request (the CLI's <c>--record-trace</c>).</param>
    /// <param name="instrument">Called once the system is built, before anything runs (the CLI's <c>--timeline</c> hangs on its hooks).</param>
    /// <param name="preflightDone">The caller already ran <see cref="Preflight"/> on this config (the trace files are not read again).</param>
    public static RunResult Run(LoadedConfig config, Action<RunProgress>? progress = null, Workloads.IRequestObserver? observer = null,
        Action<BuiltSystem, LoadedConfig>? instrument = null, bool preflightDone = false)
    {
        if (!preflightDone) SimulationRunner.Preflight(config);
        return new RunResult(SimulationRunner.Run(config, progress, observer, instrument));
    }

    /// <summary>Checks a sweep file and every point's config (nothing runs).</summary>
    public static SweepPlan PlanSweep(string sweepPath, bool useEnvironment = false) => SweepPlan.Prepare(sweepPath, useEnvironment, Environment.ProcessorCount);

    /// <summary>Runs a sweep's points on <paramref name="jobs"/> threads into <paramref name="outDir"/> (points/NNNN/ and sweep.csv, docs/sweeps.md).</summary>
    public static SweepResult RunSweep(SweepPlan plan, string outDir, int jobs = 1, ShardSpec? shard = null, bool resume = false)
        => SweepRunner.Run(plan, new SweepOptions(outDir, Math.Max(1, jobs), shard ?? ShardSpec.All, resume));

    /// <summary>Joins the shard folders of a sweep into one folder with sweep.csv.</summary>
    public static SweepMerge.MergeResult MergeSweep(IReadOnlyList<string> shardDirs, string? outDir) => SweepMerge.Merge(shardDirs, outDir);
}

/// <summary>A finished run: its summary (as summary.json holds it and as flattened <c>a.b.c</c> keys), its histograms, and the folder writer.</summary>
public sealed class RunResult
{
    private JsonObject? _summary;

    public RunResult(RunOutput output) => Output = output;

    /// <summary>The platform, workloads and timings of the run (everything the summary is built from).</summary>
    public RunOutput Output { get; }

    /// <summary>summary.json as a JSON object (docs/results.md).</summary>
    public JsonObject Summary => _summary ??= SummaryBuilder.Build(Output);

    /// <summary>summary.json's text, byte for byte what <see cref="WriteFolder"/> writes.</summary>
    public string SummaryJson => SummaryBuilder.ToJson(Summary);

    /// <summary>The summary as dotted keys (<c>iotlb.missRate</c>, <c>latencyNs.dma.p99</c>): the column names of sweep.csv.</summary>
    public IReadOnlyDictionary<string, JsonNode?> Flattened => SummaryBuilder.Flatten(Summary).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    /// <summary>Keys whose values are wall-clock measurements (differ between identical runs).</summary>
    public static IReadOnlyList<string> WallClockKeys => SummaryBuilder.WallClockKeys;

    /// <summary>The latency histograms of latency.csv, by its <c>kind</c> column (values in ps): translation, dma, walk and each device model's own.</summary>
    public IReadOnlyDictionary<string, LatencyHistogram> Histograms => RunFolderWriter.Histograms(Output);

    /// <summary>latency.csv and timeseries.csv as text.</summary>
    public string LatencyCsv => RunFolderWriter.LatencyCsv(Output);
    public string TimeSeriesCsv => RunFolderWriter.TimeSeriesCsv(Output.TimeSeries);

    /// <summary>Writes summary.json, config.resolved.json, latency.csv and timeseries.csv into <paramref name="dir"/>
    /// atomically; refuses a folder that is not an earlier result (docs/cli.md, output safety).</summary>
    /// <param name="extra">Called with the temporary folder before it is moved into place (the CLI draws its plots there).</param>
    public void WriteFolder(string dir, Action<string>? extra = null) => RunFolderWriter.Write(dir, Output, extra);
}
