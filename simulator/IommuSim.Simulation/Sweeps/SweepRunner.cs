using System.Diagnostics;
using System.Globalization;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Results;
using IommuSim.Simulation.Running;

namespace IommuSim.Simulation.Sweeps;

/// <summary>Options of one <c>sweep</c> invocation. The hooks let a front end draw or report without the library knowing how (the CLI: PNG plots, a progress bar).</summary>
public sealed record SweepOptions(string OutDir, int Jobs, ShardSpec Shard, bool Resume)
{
    /// <summary>Called with each point's temporary folder before it is moved into place (e.g. to draw the point's plots there).</summary>
    public Action<string>? PointExtra { get; init; }
    /// <summary>Called with the sweep folder and its table once sweep.csv is written (e.g. to draw the sweep's plots).</summary>
    public Action<string, SweepSpec, SweepTable>? ResultsExtra { get; init; }
    /// <summary>Called on the calling thread while the workers run; returns once <see cref="SweepProgress.Running"/> turns false.</summary>
    public Action<SweepProgress>? Progress { get; init; }
}

/// <summary>What a progress display of a running sweep can read: points to run, points done so far, whether workers still run.</summary>
public sealed record SweepProgress(string Name, int Total, int Jobs, Func<int> Done, Func<bool> Running);

/// <summary>What a sweep invocation did.</summary>
public sealed record SweepResult(int Total, int Owned, int Ran, int Skipped, bool Complete, double WallSeconds, double PointsSeconds, double ResultsSeconds);

/// <summary>
/// Runs the points of a sweep on worker threads, each point a single-threaded deterministic
/// <see cref="SimulationRunner.Run"/> written atomically to <c>DIR/points/NNNN/</c>. When every point
/// of the sweep is in DIR afterwards (unsharded, or the last shard on a shared folder), writes
/// sweep.csv (and calls <see cref="SweepOptions.ResultsExtra"/>, where the CLI draws the plots).
/// </summary>
public static class SweepRunner
{
    public const string SweepJson = "sweep.json";
    public const string SweepCsv = "sweep.csv";
    public const string PointsFolder = "points";

    /// <summary>How long the first worker runs alone before the others start (JIT warm-up).</summary>
    internal const int WarmupMs = 500;

    /// <summary>False when tiered compilation is off (runtimeconfig or DOTNET_TieredCompilation=0): then every
    /// method is optimised on first use and the warm-up would only cost time.</summary>
    private static bool TieredJit
    {
        get
        {
            if (Environment.GetEnvironmentVariable("DOTNET_TieredCompilation") is "0" || Environment.GetEnvironmentVariable("COMPlus_TieredCompilation") is "0") return false;
            object? v = AppContext.GetData("System.Runtime.TieredCompilation");
            return !(v is false || (v is string sv && sv.Equals("false", StringComparison.OrdinalIgnoreCase)));
        }
    }

    public static string PointDir(string dir, int index) => Path.Combine(dir, PointsFolder, SweepPoint.FolderOf(index));

    public static string SummaryPath(string dir, int index) => Path.Combine(PointDir(dir, index), "summary.json");

    public static SweepResult Run(SweepPlan plan, SweepOptions o)
    {
        var wall = Stopwatch.StartNew();
        string dir = Path.GetFullPath(o.OutDir);
        string json = plan.Spec.ToJson();
        PrepareFolder(dir, json, o.Resume);

        var owned = plan.Points.Where(p => o.Shard.Owns(p.Index)).ToList();
        var todo = owned.Where(p => !(o.Resume && File.Exists(SummaryPath(dir, p.Index)))).ToList();
        int skipped = owned.Count - todo.Count;

        Action<string>? pointPlots = o.PointExtra;
        int jobs = Math.Max(1, Math.Min(o.Jobs, todo.Count));
        int next = -1, done = 0;
        Exception? failure = null;
        void Worker()
        {
            while (Volatile.Read(ref failure) is null)
            {
                int i = Interlocked.Increment(ref next);
                if (i >= todo.Count) return;
                var p = todo[i];
                try
                {
                    var run = SimulationRunner.Run(plan.ConfigFor(p));
                    RunFolderWriter.Write(PointDir(dir, p.Index), run, pointPlots, cleanLeftovers: false);
                }
                catch (ConfigError e)
                {
                    Interlocked.CompareExchange(ref failure, new ConfigError(e.Messages.Select(m => $"sweep error: point {p.Index}: {m}").ToList()), null);
                    return;
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, new InvalidOperationException($"point {p.Index} failed", e), null);
                    return;
                }
                Interlocked.Increment(ref done);
            }
        }

        var threads = Enumerable.Range(0, jobs).Select(k => new Thread(Worker) { Name = $"sweep-worker-{k}", IsBackground = true }).ToList();
        // JIT warm-up: the first worker runs alone for a moment so that the runtime's background
        // compiler can optimise the simulator's hot methods on an idle core. With every core busy
        // from the start, tiered compilation is starved and all workers run unoptimised code for
        // seconds (measured: docs/sweeps.md). Costs at most WarmupMs of one worker's time.
        threads[0].Start();
        if (threads.Count > 1 && TieredJit) threads[0].Join(WarmupMs);
        foreach (var t in threads.Skip(1)) t.Start();
        if (o.Progress is not null && todo.Count > 0)
            o.Progress(new SweepProgress(plan.Spec.Name, todo.Count, threads.Count, () => Volatile.Read(ref done), () => threads.Any(t => t.IsAlive)));
        foreach (var t in threads) t.Join();
        if (failure is not null)
        {
            if (failure is ConfigError) throw failure;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }

        double pointsSeconds = wall.Elapsed.TotalSeconds;
        bool complete = plan.Points.All(p => File.Exists(SummaryPath(dir, p.Index)));
        if (complete) WriteResults(dir, plan.Spec, plan.Points, o.ResultsExtra);
        return new SweepResult(plan.Points.Count, owned.Count, todo.Count, skipped, complete, wall.Elapsed.TotalSeconds, pointsSeconds, wall.Elapsed.TotalSeconds - pointsSeconds);
    }

    /// <summary>Creates DIR and its sweep.json. A folder holding a different sweep is an error with
    /// --resume (its points would not match) and is cleared of its points without.</summary>
    private static void PrepareFolder(string dir, string json, bool resume)
    {
        OutputGuard.CheckTarget(dir, "--out", OutputGuard.SweepMarker);
        OutputGuard.CleanLeftovers(dir);
        OutputGuard.CleanLeftovers(Path.Combine(dir, PointsFolder));
        string path = Path.Combine(dir, SweepJson);
        if (File.Exists(path) && File.ReadAllText(path) != json)
        {
            if (resume) throw new ConfigError($"sweep error: --resume: {dir} holds a different sweep (its sweep.json differs); use another --out or run without --resume to start over");
            string points = Path.Combine(dir, PointsFolder);
            if (Directory.Exists(points)) Directory.Delete(points, true);
            foreach (var f in new[] { SweepCsv }) if (File.Exists(Path.Combine(dir, f))) File.Delete(Path.Combine(dir, f));
        }
        Directory.CreateDirectory(Path.Combine(dir, PointsFolder));
        AtomicFile.WriteAllText(path, json);
    }

    /// <summary>sweep.csv from the points in DIR (all must be there), then <paramref name="extra"/> (the CLI's plots).</summary>
    public static SweepTable WriteResults(string dir, SweepSpec spec, IReadOnlyList<SweepPoint> points, Action<string, SweepSpec, SweepTable>? extra = null)
    {
        var table = SweepTable.FromPoints(spec, points, p => SummaryPath(dir, p.Index));
        AtomicFile.WriteAllText(Path.Combine(dir, SweepCsv), table.ToCsv());
        extra?.Invoke(dir, spec, table);
        return table;
    }
}

/// <summary>Writes a file through a temporary sibling and a rename, so readers never see half of it.</summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) => Write(path, tmp => File.WriteAllText(tmp, text));

    public static void Write(string path, Action<string> writeTo)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string tmp = OutputGuard.TempSibling(full, keepExtension: true);
        OutputGuard.Track(tmp);
        try
        {
            writeTo(tmp);
            OutputGuard.Critical(() => File.Move(tmp, full, overwrite: true));
        }
        catch
        {
            OutputGuard.Delete(tmp);
            throw;
        }
        finally
        {
            OutputGuard.Forget(tmp);
        }
    }
}
