using System.Diagnostics;
using IommuSim.Simulation.Config;
using IommuSim.Engine.Rng;
using IommuSim.Engine.Time;
using IommuSim.Hardware;
using IommuSim.Workloads;
using IommuSim.Workloads.Generators;
using IommuSim.Workloads.Nic;
using IommuSim.Workloads.Nvme;
using IommuSim.Workloads.Trace;

namespace IommuSim.Simulation.Running;

/// <summary>Progress callback data: simulated ns, measured requests completed, events executed.</summary>
public readonly record struct RunProgress(double SimulatedNs, long Completed, long Target, long Events, double WallSeconds);

/// <summary>Everything a finished run produced, before it is written to files.</summary>
public sealed class RunOutput
{
    public required LoadedConfig Config { get; init; }
    public required Platform Platform { get; init; }
    public required long Events { get; init; }
    public required long MeasuredStartPs { get; init; }
    /// <summary>Start of the throughput window: the measured phase, once warm-up requests still in flight have drained.</summary>
    public required long ThroughputStartPs { get; init; }
    public required long EndPs { get; init; }
    public required double WallSeconds { get; init; }
    public required IReadOnlyList<TimeSample> TimeSeries { get; init; }
    public required IReadOnlyList<WorkloadDriver> Workloads { get; init; }
    public required BuiltSystem System { get; init; }
    /// <summary>Bytes the event loop allocated (pools and queues growing to their working size, then nothing).</summary>
    public long RunLoopAllocatedBytes { get; init; }
    public double SimulatedNs => (EndPs - MeasuredStartPs) / 1000.0;
    public double ThroughputWindowNs => (EndPs - ThroughputStartPs) / 1000.0;
}

/// <summary>
/// Builds the system a config describes, runs it through warm-up and the measured phase, and
/// returns the platform with its statistics. Single-threaded and deterministic: the same config
/// and seed give the same events in the same order.
/// </summary>
public static class SimulationRunner
{
    /// <param name="instrument">Called once the system is built, before anything runs (e.g. to hang a timeline on its hooks).</param>
    /// <param name="openTrace">Opens a trace workload's resolved path (default: the file); the bench replays from memory.</param>
    public static RunOutput Run(LoadedConfig loaded, Action<RunProgress>? progress = null, IRequestObserver? observer = null,
        Action<BuiltSystem, LoadedConfig>? instrument = null, Func<string, Stream>? openTrace = null)
    {
        var cfg = loaded.Config;
        var wall = Stopwatch.StartNew();
        var system = SystemBuilder.Build(cfg);
        var platform = system.Platform;
        instrument?.Invoke(system, loaded);

        var budget = new RequestBudget(cfg.Simulation.WarmupRequests, cfg.Simulation.MaxRequests);
        var workloads = new List<WorkloadDriver>();
        try
        {
            for (int i = 0; i < cfg.Workloads.Count; i++)
                workloads.Add(CreateWorkload(loaded, platform, budget, i, openTrace, system.DmaApi));
            foreach (var w in workloads)
            {
                w.Observer = observer;
                w.DmaApi = system.DmaApi;
                platform.Stats.Register(w.RequestLatency);
            }

            var sampler = new TimeSeriesSampler(platform, SimTime.FromUs(cfg.Simulation.SampleIntervalUs));
            long measuredStart = 0;
            void BeginMeasured()
            {
                platform.Stats.ResetAll();
                platform.Scheduler.ResetExecutedCount();
                measuredStart = platform.Scheduler.Now;
                sampler.Restart(measuredStart);
            }
            if (cfg.Simulation.WarmupRequests == 0) BeginMeasured();
            else budget.MeasuredPhaseStarting += BeginMeasured;

            foreach (var w in workloads) w.Start();

            long alloc0 = GC.GetAllocatedBytesForCurrentThread();
            // Without a time limit a run still ends at the ceiling the input limits are derived from (docs/limits.md).
            long limit = cfg.Simulation.MaxSimulatedUs > 0 ? Math.Min(SimTime.FromUs(cfg.Simulation.MaxSimulatedUs), Config.RunLimits.TimeCeilingPs) : Config.RunLimits.TimeCeilingPs;
            long checkEvery = 1 << 16, nextCheck = checkEvery;
            long lastReport = 0;
            var sched = platform.Scheduler;
            while (true)
            {
                var outcome = progress is null
                    ? sched.Run(limit)
                    : sched.Run(limit, () =>
                    {
                        if (sched.Executed < nextCheck) return false;
                        nextCheck = sched.Executed + checkEvery;
                        return wall.ElapsedMilliseconds - lastReport >= 200;
                    });
                if (outcome == Engine.Scheduling.RunOutcome.Predicate && progress is not null)
                {
                    lastReport = wall.ElapsedMilliseconds;
                    progress(new RunProgress((sched.Now - measuredStart) / 1000.0, budget.MeasuredCompleted, cfg.Simulation.MaxRequests, sched.Executed, wall.Elapsed.TotalSeconds));
                    continue;
                }
                break;
            }
            long runLoopAllocated = GC.GetAllocatedBytesForCurrentThread() - alloc0;
            sampler.StopSampling();
            var series = sampler.Samples.ToList();
            series.Add(sampler.Take());
            wall.Stop();
            return new RunOutput
            {
                Config = loaded,
                Platform = platform,
                Events = sched.Executed,
                MeasuredStartPs = measuredStart,
                ThroughputStartPs = Math.Min(sched.Now, Math.Max(measuredStart, budget.LastWarmupCompletionPs)),
                EndPs = sched.Now,
                WallSeconds = wall.Elapsed.TotalSeconds,
                TimeSeries = series,
                Workloads = workloads,
                System = system,
                RunLoopAllocatedBytes = runLoopAllocated,
            };
        }
        finally
        {
            foreach (var w in workloads) (w as IDisposable)?.Dispose();
        }
    }

    /// <summary>Input checks that need to read files (traces) — all before anything runs.</summary>
    public static void Preflight(LoadedConfig loaded)
    {
        var devices = loaded.Config.Devices.Select(d => d.Name).ToHashSet();
        foreach (var w in loaded.Config.Workloads.Where(w => w.Type == "trace"))
        {
            // Reads the whole trace once (constant memory); issue times must leave room for the run (docs/limits.md).
            string path = ConfigValidator.ResolvePath(loaded.BaseDirectory, w.Path!);
            using var reader = TraceReader.Open(path, devices);
            long maxPs = (long)(RunLimits.MaxSimulatedUs * 1e6);
            while (reader.Next() is TraceRecord r)
                if (r.TimePs > maxPs)
                    throw new TraceFormatException(path, r.Line, $"time {r.TimePs / 1000} ns: issue times must be at most {maxPs / 1000} ns (simulated time is a 64-bit count of picoseconds; docs/limits.md)");
        }
        KernelTracePreflight.Check(loaded);
    }

    private static TraceReader OpenTrace(LoadedConfig loaded, string path, Func<string, Stream>? open)
    {
        string resolved = ConfigValidator.ResolvePath(loaded.BaseDirectory, path);
        var devices = loaded.Config.Devices.Select(d => d.Name).ToHashSet();
        return open is null ? TraceReader.Open(resolved, devices) : new TraceReader(open(resolved), resolved, devices);
    }

    private static WorkloadDriver CreateWorkload(LoadedConfig loaded, Platform p, RequestBudget budget, int index, Func<string, Stream>? openTrace, Uapi.DmaApi.KernelDmaApi dmaApi)
    {
        var cfg = loaded.Config;
        var o = cfg.Workloads[index];
        var dev = p.Device(o.Device) ?? throw new ConfigError($"config error: workloads:{index}:device = {o.Device}: no such device");
        var rng = SimRandom.ForStream(cfg.Simulation.Seed, $"workload{index}");
        ulong baseIova = o.Iova?.Value ?? (dev.Options.DmaRegions.Count > 0 ? dev.Options.DmaRegions[0].Iova.Value : 0);
        string path = $"workloads:{index}";
        try
        {
            return o.Type switch
            {
                // Device models map per buffer through WorkloadDriver.DmaApi, which Run sets before Start.
                "nic-rx" or "nic-tx" => new NicWorkload(o, dev, p.Scheduler, budget, rng, null, path),
                "nvme" => new NvmeWorkload(o, dev, p.Scheduler, budget, rng, null, path),
                "stream" => new StreamWorkload(o, dev, p.Scheduler, budget, rng, baseIova),
                "random" => new RandomWorkload(o, dev, p.Scheduler, budget, rng, baseIova),
                "zipf" => new ZipfWorkload(o, dev, p.Scheduler, budget, rng, baseIova),
                "trace" => new TraceWorkload(o, dev, p.Scheduler, budget, rng, OpenTrace(loaded, o.Path!, openTrace)),
                "kernel-trace" => new Workloads.KernelTrace.KernelTraceWorkload(o, dev, p.Scheduler, budget, rng,
                    Workloads.KernelTrace.FtraceReader.Open(ConfigValidator.ResolvePath(loaded.BaseDirectory, o.Path!)), new FixedIovaDmaApi(dmaApi)),
                _ => throw new ConfigError($"config error: workloads:{index}:type = {o.Type}: unknown workload type"),
            };
        }
        catch (ArgumentException e) when (o.IsNic || o.Type == "nvme")
        {
            // The device models check what the validator cannot (rings, queues and pools inside the dmaRegions).
            throw new ConfigError(e.Message.Split("; ").Select(m => $"config error: {m}").ToList());
        }
    }
}
