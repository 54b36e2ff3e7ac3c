using System.Text;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Time;
using IommuSim.Engine.Units;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Workloads.KernelTrace;

namespace IommuSim.Workloads.Tests;

/// <summary>The kernel-trace replay against a stand-in DMA API: ordering, waits, and no allocation per event.</summary>
public class KernelTraceWorkloadTests
{
    /// <summary>Calls back after fixed delays, with no allocation per call (pending calls live in arrays).</summary>
    private sealed class FakeFixedApi(Scheduler s, double mapNs, double unmapNs) : IFixedIovaDmaApi, IEventHandler
    {
        private readonly IDmaApiClient?[] _client = new IDmaApiClient?[1024];
        private readonly long[] _tag = new long[1024];
        private readonly ulong[] _iova = new ulong[1024];
        private long _next;
        public readonly List<(long TimePs, bool Map, ulong Iova, int Bytes, int Cpu)> Calls = [];
        public bool Log { get; set; } = true;
        public string Mode => "strict";

        private void Later(double ns, int kind, IDmaApiClient c, long tag, ulong iova)
        {
            long i = _next++ % _client.Length;
            _client[i] = c; _tag[i] = tag; _iova[i] = iova;
            s.ScheduleIn(SimTime.FromNs(ns), this, kind, i);
        }

        public void MapAt(DmaEngine device, ulong iova, int bytes, Access access, IDmaApiClient client, long tag, int cpu)
        {
            if (Log) Calls.Add((s.Now, true, iova, bytes, cpu));
            Later(mapNs, 0, client, tag, iova);
        }

        public void UnmapAt(DmaEngine device, ulong iova, int bytes, IDmaApiClient client, long tag, int cpu)
        {
            if (Log) Calls.Add((s.Now, false, iova, bytes, cpu));
            Later(unmapNs, 1, client, tag, iova);
        }

        public void OnEvent(int kind, long arg, object? payload)
        {
            var c = _client[arg]!;
            if (kind == 0) c.OnMapped(_tag[arg], _iova[arg]);
            else c.OnUnmapped(_tag[arg]);
        }
    }

    private static string Line(double t, int cpu, string evt, ulong iova, int size) => evt == "map"
        ? $"  drv-1 [{cpu:000}] .....  {t:0.000000}: map: IOMMU: iova=0x{iova:x16} - 0x{iova + (ulong)size:x16} paddr=0x0000000123400000 size={size}\n"
        : $"  drv-1 [{cpu:000}] .....  {t:0.000000}: unmap: IOMMU: iova=0x{iova:x16} - 0x{iova + (ulong)size:x16} size={size} unmapped_size={size}\n";

    private static (KernelTraceWorkload W, FakeFixedApi Api, ModelHarness H) Make(string trace, int dmasPerMap = 2, double timeScale = 1, double mapNs = 200, double unmapNs = 300)
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("dev0", 3);
        var o = new WorkloadOptions
        {
            Device = "dev0", Type = "kernel-trace", Bytes = new ByteSize(256), ReadFraction = 0.5,
            KernelTrace = new KernelTraceOptions { DmasPerMap = dmasPerMap, TimeScale = timeScale },
        };
        var api = new FakeFixedApi(h.Scheduler, mapNs, unmapNs);
        var reader = new FtraceReader(new MemoryStream(Encoding.UTF8.GetBytes(trace)), "k.trace");
        var w = new KernelTraceWorkload(o, dev, h.Scheduler, new RequestBudget(0, 0), ModelHarness.Rng(1), reader, api);
        return (w, api, h);
    }

    [Fact]
    public void Calls_keep_the_traced_times_cpus_and_iovas_and_an_unmap_waits_for_the_dmas()
    {
        // Unmap 100 ns after the map: sooner than map (200 ns) + 2 DMAs, so it waits and lags.
        const ulong iova = ModelHarness.RegionIova + 0x3000;
        string trace = Line(5.000000, 3, "map", iova, 8192) + "  drv-1 [001] .....  5.000000: unmap: IOMMU: iova=0x" + (iova).ToString("x16") + " - 0x" + (iova + 8192).ToString("x16") + " size=8192 unmapped_size=8192\n"
            + Line(5.000010, 2, "map", iova, 4096);
        var (w, api, h) = Make(trace);
        var log = new DmaLog();
        w.Observer = log;
        h.Run([w]);
        Assert.Equal(3, api.Calls.Count);
        Assert.Equal((0L, true, iova, 8192, 3), api.Calls[0]);
        Assert.False(api.Calls[1].Map);
        Assert.True(api.Calls[1].TimePs > SimTime.FromNs(200)); // after the map's callback and both DMAs
        Assert.Equal(1, api.Calls[1].Cpu);
        Assert.Equal(SimTime.FromUs(10), api.Calls[2].TimePs); // the recorded 10 µs gap
        Assert.Equal(4, log.Entries.Count);
        Assert.Equal(iova, log.Entries[0].Iova);
        Assert.Equal(iova + 256, log.Entries[1].Iova); // successive 256-byte slots of the buffer
        Assert.Equal(1, w.BlockedUnmaps);
        Assert.Equal(1, w.LaggedEvents);
        Assert.Equal(2, w.Maps);
    }

    [Fact]
    public void Steady_state_allocates_nothing_per_event()
    {
        var sb = new StringBuilder("# tracer: nop\n");
        double t = 1.0;
        for (int i = 0; i < 20000; i++)
        {
            ulong iova = ModelHarness.RegionIova + (ulong)(i % 64) * 0x1000;
            sb.Append(Line(t, i % 4, "map", iova, 4096));
            sb.Append(Line(t + 0.000002, i % 4, "unmap", iova, 4096));
            t += 0.000003;
        }
        var (w, api, h) = Make(sb.ToString(), dmasPerMap: 1);
        api.Log = false;
        w.Start();
        h.Scheduler.Run(SimTime.FromUs(20_000));
        long maps0 = w.Maps;
        long before = GC.GetAllocatedBytesForCurrentThread();
        h.Scheduler.Run(SimTime.FromUs(70_000));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long events = 2 * (w.Maps - maps0);
        Assert.True(events > 10_000, $"{events} events");
        Assert.Equal(20000, w.Maps);
        Assert.Equal(20000, w.Unmaps);
        Assert.True(allocated < 4 * events, $"{allocated} bytes allocated for {events} map/unmap events");
    }
}
