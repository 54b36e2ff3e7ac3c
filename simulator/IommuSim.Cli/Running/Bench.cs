using System.Diagnostics;
using System.Globalization;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Running;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Units;
using IommuSim.Hardware.Devices;
using IommuSim.Uapi.Designs;
using IommuSim.Workloads;

namespace IommuSim.Cli.Running;

/// <summary>
/// <c>iommusim bench</c>: the scheduler hold model at three queue sizes and the translation path on
/// standard workloads (IOTLB-hit random, nested with ~50 % misses on VT-d and on SMMUv3), reported per wall-clock second
/// of this machine, one core.
/// </summary>
public static class Bench
{
    public static int Run(TextWriter o, bool quick)
    {
        var inv = CultureInfo.InvariantCulture;
        o.WriteLine($"iommusim bench — {Environment.ProcessorCount} cores visible, .NET {Environment.Version}, one simulation thread");
        o.WriteLine("scheduler hold model (each event schedules one more at now + Exp(1 ns)):");
        foreach (int n in new[] { 1_000, 100_000, 1_000_000 })
        {
            long events = quick ? 200_000 : 5_000_000;
            var (ev, s) = HoldModel.Run(n, events, 42);
            o.WriteLine(string.Create(inv, $"  N = {n,9:N0}: {ev / s / 1e6,8:0.0} M events/s"));
        }
        o.WriteLine("translation path (TLPs through link, root complex, IOMMU, memory):");
        long requests = quick ? 20_000 : 400_000;
        foreach (var (label, cfg) in Workloads(requests))
        {
            var loaded = new LoadedConfig(cfg, "<bench>", ConfigLoader.ToJson(cfg), "bench");
            SimulationRunner.Run(loaded with { Config = Shorter(cfg) }); // warm-up: JIT tiering (half a run, so the measured run is optimised code)
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var run = SimulationRunner.Run(loaded);
            sw.Stop();
            double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            double bytesPerEvent = run.RunLoopAllocatedBytes / (double)Math.Max(1, run.Events);
            long tlps = run.Platform.Devices.Sum(d => d.Stats.Tlps);
            var (lookups, misses) = run.Platform.Smmu is { } smmu ? (smmu.Tlb.Lookups, smmu.Tlb.Misses) : (run.Platform.Iommu.Iotlb.Lookups, run.Platform.Iommu.Iotlb.Misses);
            double missRate = lookups > 0 ? misses / (double)lookups : 0;
            o.WriteLine(string.Create(inv,
                $"  {label,-42} {tlps / sw.Elapsed.TotalSeconds / 1e6,6:0.00} M TLPs/s  {run.Events / sw.Elapsed.TotalSeconds / 1e6,6:0.0} M events/s  [per CPU-second: {tlps / cpuSeconds / 1e6:0.00} M TLPs/s]  (IOTLB miss rate {missRate:0.000}, {tlps:N0} TLPs, {bytesPerEvent:0.0} B allocated/event in the event loop)"));
        }
        TraceReplay(o, requests);
        return 0;
    }

    /// <summary>
    /// CSV trace replay against the synthetic workload it was recorded from (nested, ~50 % IOTLB
    /// misses): the same requests, so the same simulation; the difference is the cost of reading the
    /// trace. The trace is held in memory (a bench writes no files) and parsed exactly as a file is.
    /// </summary>
    private static void TraceReplay(TextWriter o, long requests)
    {
        var inv = CultureInfo.InvariantCulture;
        var synth = Make("bench-nested", TranslationDesigns.Nested.Name, "512KiB", requests);
        var synthLoaded = new LoadedConfig(synth, "<bench>", ConfigLoader.ToJson(synth), "bench");
        var rec = new MemoryTraceRecorder();
        SimulationRunner.Run(synthLoaded, observer: rec);
        byte[] trace = rec.ToArray();
        var replay = Make("bench-nested", TranslationDesigns.Nested.Name, "512KiB", requests);
        replay.Workloads = [new WorkloadOptions { Device = "dev0", Type = "trace", Path = "<bench-trace>" }];
        var replayLoaded = new LoadedConfig(replay, "<bench>", ConfigLoader.ToJson(replay), "bench");
        Func<string, Stream> open = _ => new MemoryStream(trace, writable: false);
        SimulationRunner.Run(replayLoaded, openTrace: open); // warm-up (JIT) of the replay path
        double parseCpuNs = double.MaxValue;
        for (int i = 0; i < 3; i++) // the parser alone, per record, in CPU time
        {
            var c0 = Process.GetCurrentProcess().TotalProcessorTime;
            using var reader = new IommuSim.Workloads.Trace.TraceReader(open(""), "<bench-trace>", new HashSet<string> { "dev0" });
            long records = 0;
            while (reader.Next() is not null) records++;
            parseCpuNs = Math.Min(parseCpuNs, (Process.GetCurrentProcess().TotalProcessorTime - c0).TotalMilliseconds * 1e6 / Math.Max(1, records));
        }
        const int rounds = 6;
        var wallRatio = new double[rounds];
        var cpuRatio = new double[rounds];
        double bestSynth = 0, bestReplay = 0;
        long completed = 0;
        // Paired rounds, and the median of the per-round ratios: neighbours on
        // this VM change the speed by tens of percent from one run to the next, far more than within a pair.
        for (int round = 0; round < rounds; round++)
        {
            // Which goes first alternates, so that neither gains from running second (a warmer heap, a quieter moment).
            double wa, ca, wb, cb;
            long n;
            if (round % 2 == 0)
            {
                (wb, cb, n) = Timed(() => SimulationRunner.Run(replayLoaded, openTrace: open));
                (wa, ca, _) = Timed(() => SimulationRunner.Run(synthLoaded));
            }
            else
            {
                (wa, ca, _) = Timed(() => SimulationRunner.Run(synthLoaded));
                (wb, cb, n) = Timed(() => SimulationRunner.Run(replayLoaded, openTrace: open));
            }
            wallRatio[round] = wb / wa;
            cpuRatio[round] = cb / ca;
            bestSynth = Math.Max(bestSynth, wa);
            bestReplay = Math.Max(bestReplay, wb);
            completed = n;
        }
        Array.Sort(wallRatio);
        Array.Sort(cpuRatio);
        o.WriteLine($"trace replay (CSV, the synthetic run's own requests, nested 4x4, ~50% miss; {rounds} paired rounds):");
        o.WriteLine(string.Create(inv, $"  {"synthetic random 64B",-34} {bestSynth / 1e6,6:0.000} M requests/s (best round)"));
        o.WriteLine(string.Create(inv, $"  {"trace replay of the same requests",-34} {bestReplay / 1e6,6:0.000} M requests/s (best round)"));
        o.WriteLine(string.Create(inv, $"  replay / synthetic, median of rounds: {(wallRatio[rounds / 2 - 1] + wallRatio[rounds / 2]) / 2:0.00} x (wall), {(cpuRatio[rounds / 2 - 1] + cpuRatio[rounds / 2]) / 2:0.00} x (CPU); rounds {wallRatio[0]:0.00}-{wallRatio[^1]:0.00} x. {trace.Length / 1e6:0.0} MB trace, {completed:N0} requests; parsing alone {parseCpuNs:0} ns/record of CPU"));
    }

    /// <summary>Requests completed per wall-clock second and per CPU-second of the process.</summary>
    private static (double Wall, double Cpu, long Requests) Timed(Func<RunOutput> run)
    {
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        var r = run();
        sw.Stop();
        double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        long n = r.Platform.Devices.Sum(d => d.Stats.Completed);
        return (n / sw.Elapsed.TotalSeconds, n / Math.Max(1e-9, cpu), n);
    }

    /// <summary>Records issued requests as an untimed (closed-loop) CSV trace in memory.</summary>
    private sealed class MemoryTraceRecorder : IRequestObserver
    {
        private readonly MemoryStream _ms = new();
        private readonly StreamWriter _w;

        public MemoryTraceRecorder()
        {
            _w = new StreamWriter(_ms) { NewLine = "\n" };
            _w.WriteLine(IommuSim.Workloads.Trace.TraceReader.Header);
        }

        public void OnIssued(long timePs, string device, uint? pasid, ulong iova, int bytes, bool write)
            => _w.Write(string.Create(CultureInfo.InvariantCulture, $",{device},{pasid},0x{iova:x},{bytes},{(write ? 'W' : 'R')}\n"));

        public byte[] ToArray()
        {
            _w.Flush();
            return _ms.ToArray();
        }
    }

    private static SimulationConfig Shorter(SimulationConfig c)
    {
        var copy = System.Text.Json.JsonSerializer.Deserialize<SimulationConfig>(ConfigLoader.ToJson(c), ConfigLoader.JsonOptions)!;
        copy.Simulation.MaxRequests = Math.Max(1000, c.Simulation.MaxRequests / 2);
        return copy;
    }

    /// <summary>The standard translation workloads.</summary>
    public static IEnumerable<(string Label, SimulationConfig Config)> Workloads(long requests)
    {
        yield return ("random 64B, single-stage, IOTLB-hit", Make("bench-hit", TranslationDesigns.SingleStage.Name, "128KiB", requests));
        yield return ("random 64B, nested 4x4, ~50% miss", Make("bench-nested", TranslationDesigns.Nested.Name, "512KiB", requests));
        // The SMMUv3's 2048-entry TLB reaches 8 MiB: 16 MiB gives it about half misses, through 2-D walks.
        yield return ("random 64B, SMMUv3 nested 4x4, ~50% miss", Make("bench-smmu-nested", TranslationDesigns.Nested.Name, "16MiB", requests, "smmuv3"));
    }

    private static SimulationConfig Make(string name, string design, string workingSet, long requests, string architecture = "vtd")
    {
        var cfg = new SimulationConfig
        {
            Name = name,
            Simulation = new SimulationOptions { Seed = 1, MaxRequests = requests, SampleIntervalUs = 1000 },
            Translation = new TranslationOptions { Design = design },
            Vms = [new VmOptions { Name = "vm0", MemoryMiB = 256 }],
            Devices =
            [
                new DeviceOptions
                {
                    Name = "dev0", Bdf = "0000:03:00.0", MaxOutstanding = 64,
                    Attach = new AttachOptions { Via = "iommufd", Vm = "vm0" },
                    DmaRegions = [new DmaRegionOptions { Iova = new Address(0x1_0000_0000), Bytes = ByteSize.Parse("64MiB") }],
                },
            ],
            Workloads = [new WorkloadOptions { Device = "dev0", Type = "random", Bytes = new ByteSize(64), ReadFraction = 0.5, WorkingSetBytes = ByteSize.Parse(workingSet) }],
        };
        cfg.Iommu.WalkCaches.Enabled = true;
        cfg.Iommu.Architecture = architecture;
        return cfg;
    }
}
