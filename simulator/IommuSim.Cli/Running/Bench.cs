using System.Diagnostics;
using System.Globalization;
using IommuSim.Cli.Config;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Units;
using IommuSim.Hardware.Devices;
using IommuSim.Workloads;

namespace IommuSim.Cli.Running;

/// <summary>
/// <c>iommusim bench</c>: the scheduler hold model at three queue sizes and the translation path on
/// standard workloads (IOTLB-hit random, nested with ~50 % misses), reported per wall-clock second
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
            var io = run.Platform.Iommu;
            double missRate = io.Iotlb.Lookups > 0 ? io.Iotlb.Misses / (double)io.Iotlb.Lookups : 0;
            o.WriteLine(string.Create(inv,
                $"  {label,-34} {tlps / sw.Elapsed.TotalSeconds / 1e6,6:0.00} M TLPs/s  {run.Events / sw.Elapsed.TotalSeconds / 1e6,6:0.0} M events/s  [per CPU-second: {tlps / cpuSeconds / 1e6:0.00} M TLPs/s]  (IOTLB miss rate {missRate:0.000}, {tlps:N0} TLPs, {bytesPerEvent:0.0} B allocated/event in the event loop)"));
        }
        return 0;
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
        yield return ("random 64B, single-stage, IOTLB-hit", Make("bench-hit", "single-stage", "128KiB", requests));
        yield return ("random 64B, nested 4x4, ~50% miss", Make("bench-nested", "nested", "512KiB", requests));
    }

    private static SimulationConfig Make(string name, string design, string workingSet, long requests)
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
        return cfg;
    }
}
