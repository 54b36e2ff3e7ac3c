using IommuSim.Engine.Units;
using IommuSim.Hardware.Devices;
using IommuSim.Workloads.Nvme;

namespace IommuSim.Workloads.Tests;

public class NvmeTests
{
    private static WorkloadOptions Nvme(int bytes = 4096, int qd = 32, string pattern = "random", double readFraction = 1.0,
        int media = 8, string policy = "recycle", string arrival = "closed", double rateMrps = 1.0)
        => new()
        {
            Device = "ssd0",
            Type = "nvme",
            Bytes = new ByteSize(bytes),
            WorkingSetBytes = new ByteSize(8 << 20),
            Arrival = arrival,
            RateMrps = rateMrps,
            Nvme = new NvmeOptions { QueueDepth = qd, Pattern = pattern, ReadFraction = readFraction, MediaParallelism = media, BufferPolicy = policy },
        };

    private static (NvmeWorkload W, DmaLog Log) RunNvme(WorkloadOptions o, long commands, long warmup = 0, ulong seed = 1,
        Func<ModelHarness, IDmaApi>? makeApi = null)
    {
        var h = new ModelHarness(seed);
        var dev = h.AddDevice("ssd0", 4, maxOutstanding: 64);
        var w = new NvmeWorkload(o, dev, h.Scheduler, new RequestBudget(warmup, commands), ModelHarness.Rng(seed), makeApi?.Invoke(h), "workloads:0");
        var log = new DmaLog();
        w.Observer = log;
        h.Run([w]);
        return (w, log);
    }

    private static double Value(NvmeWorkload w, string key) => w.Summary().Single(kv => kv.Key == key).Value;

    [Fact]
    public void A_read_command_is_sq_fetch_then_data_write_then_cq_write()
    {
        var (w, log) = RunNvme(Nvme(qd: 1), commands: 20);
        Assert.Equal(60, log.Entries.Count);
        for (int i = 0; i < 20; i++)
        {
            var (sq, data, cq) = (log.Entries[3 * i], log.Entries[3 * i + 1], log.Entries[3 * i + 2]);
            Assert.True(!sq.Write && sq.Bytes == 64 && sq.Iova == w.SqIova, $"command {i}: SQ entry fetch");
            Assert.True(data.Write && data.Bytes == 4096 && data.Iova >= w.DataIova && data.Iova < w.DataIova + (8 << 20), $"command {i}: data");
            Assert.True(cq.Write && cq.Bytes == 16 && cq.Iova == w.CqIova, $"command {i}: CQ entry");
        }
        Assert.Equal(0, w.Stats.PrpListFetches);
        Assert.Equal(20, w.Stats.Completed);
        // QD 1: each command costs the media time plus a few DMA round trips.
        Assert.InRange(Value(w, "latencyNs.mean"), 10_000, 13_000);
    }

    [Fact]
    public void A_write_command_reads_its_data_before_the_media_time()
    {
        var (w, log) = RunNvme(Nvme(qd: 1, readFraction: 0), commands: 10);
        Assert.Equal(30, log.Entries.Count);
        Assert.All(Enumerable.Range(0, 10), i => Assert.True(!log.Entries[3 * i + 1].Write && log.Entries[3 * i + 1].Bytes == 4096));
        Assert.Equal(10, w.Stats.Writes);
        Assert.InRange(Value(w, "writeLatencyNs.mean"), 20_000, 23_000);
    }

    [Theory]
    [InlineData(4096, 0)]
    [InlineData(8192, 0)]       // two pages: PRP1 and PRP2, no list
    [InlineData(16384, 24)]     // four pages: a PRP list of three entries
    [InlineData(131072, 248)]   // 32 pages: 31 entries
    public void Transfers_over_two_pages_fetch_a_prp_list(int bytes, int listBytes)
    {
        var (w, log) = RunNvme(Nvme(bytes: bytes, qd: 4), commands: 40);
        long expectFetches = listBytes == 0 ? 0 : 40;
        Assert.Equal(expectFetches, w.Stats.PrpListFetches);
        Assert.Equal(expectFetches * listBytes, w.Stats.PrpListBytes);
        var prpReads = log.Entries.Where(e => e.Iova >= w.PrpListIova && e.Iova < w.PrpListIova + 4 * 4096UL).ToList();
        Assert.Equal(expectFetches, prpReads.Count);
        Assert.All(prpReads, r => Assert.True(!r.Write && r.Bytes == listBytes));
        // Each list fetch follows its command's SQ entry fetch and precedes its data DMA.
        if (listBytes > 0)
        {
            int firstPrp = log.Entries.FindIndex(e => e.Iova >= w.PrpListIova && e.Iova < w.PrpListIova + 4 * 4096UL);
            int firstData = log.Entries.FindIndex(e => e.Bytes == bytes);
            Assert.True(log.Entries.Take(firstPrp).Any(e => e.Bytes == 64) && firstPrp < firstData);
        }
        Assert.Equal(40L * bytes, w.Stats.Bytes);
    }

    [Fact]
    public void Latency_grows_with_queue_depth_once_the_media_saturates()
    {
        // 4 media units × 10 µs: at most 400 k IOPS.
        double Lat(int qd, out double iops)
        {
            var (w, _) = RunNvme(Nvme(qd: qd, media: 4), commands: 1500, warmup: 200);
            iops = Value(w, "iops");
            return Value(w, "latencyNs.mean");
        }
        double l1 = Lat(1, out double i1), l4 = Lat(4, out double i4), l16 = Lat(16, out double i16), l64 = Lat(64, out double i64);
        Assert.InRange(l4, 0.95 * l1, 1.3 * l1);          // below saturation QD costs little latency
        Assert.True(i4 > 3 * i1, $"IOPS QD1 {i1}, QD4 {i4}");
        Assert.InRange(i16, 0.9 * 400_000, 400_000 * 1.01); // saturated: IOPS stop growing
        Assert.InRange(i64, 0.9 * 400_000, 400_000 * 1.01);
        Assert.True(l16 > 3 * l4, $"latency QD4 {l4} ns, QD16 {l16} ns");
        Assert.True(l64 > 3.5 * l16, $"latency QD16 {l16} ns, QD64 {l64} ns");
    }

    [Fact]
    public void Sequential_commands_walk_the_window_in_order()
    {
        var (w, log) = RunNvme(Nvme(qd: 1, pattern: "sequential", bytes: 65536), commands: 200);
        var data = log.Entries.Where(e => e.Bytes == 65536).Select(e => e.Iova).ToList();
        for (int i = 0; i < data.Count; i++) Assert.Equal(w.DataIova + (ulong)(i % 128) * 65536, data[i]);
    }

    [Fact]
    public void Map_per_io_maps_each_buffer_and_a_slow_unmap_costs_iops()
    {
        static Func<ModelHarness, IDmaApi> Api(double unmapNs) => h => new FakeDmaApi(h.Scheduler, "x", 100, unmapNs, ModelHarness.RegionIova + (32UL << 20), 16UL << 20);
        var (fast, log) = RunNvme(Nvme(qd: 32, media: 64, policy: "map-per-io"), 1500, warmup: 100, makeApi: Api(100));
        var (slow, _) = RunNvme(Nvme(qd: 32, media: 64, policy: "map-per-io"), 1500, warmup: 100, makeApi: Api(5000));
        Assert.All(log.Entries.Where(e => e.Bytes == 4096), e => Assert.True(e.Iova >= ModelHarness.RegionIova + (32UL << 20)));
        Assert.InRange(fast.Stats.Maps, 1500, 1500 + 32);
        // The host is one serial context: 5.1 µs per command → < 200 k IOPS.
        Assert.True(Value(slow, "iops") < 0.5 * Value(fast, "iops"), $"slow {Value(slow, "iops")} fast {Value(fast, "iops")}");
        Assert.InRange(Value(slow, "iops"), 150_000, 200_000);
    }

    [Fact]
    public void Open_loop_commands_arrive_at_the_rate()
    {
        var (w, _) = RunNvme(Nvme(qd: 64, arrival: "poisson", rateMrps: 0.2), 2000, warmup: 100);
        Assert.InRange(Value(w, "iops"), 180_000, 220_000);
        Assert.InRange(Value(w, "outstandingMean"), 1, 4); // ≈ 0.2 M/s × 11 µs (Little's law)
        Assert.Equal(0, Value(w, "hostBacklogMax"));

        // Offered beyond what 8 media units serve (800 k IOPS): commands pile up in the host.
        var (over, _) = RunNvme(Nvme(qd: 16, arrival: "poisson", rateMrps: 1.2), 3000, warmup: 100);
        Assert.InRange(Value(over, "iops"), 700_000, 820_000);
        Assert.True(Value(over, "hostBacklogMax") > 100, $"backlog max {Value(over, "hostBacklogMax")}");
    }

    [Fact]
    public void Same_seed_gives_the_same_stats()
    {
        var a = RunNvme(Nvme(qd: 16, readFraction: 0.7), 800, seed: 3).W.Summary();
        var b = RunNvme(Nvme(qd: 16, readFraction: 0.7), 800, seed: 3).W.Summary();
        var c = RunNvme(Nvme(qd: 16, readFraction: 0.7), 800, seed: 4).W.Summary();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Theory]
    [InlineData(2048, 32, "random", "workloads:0:bytes = 2048: an NVMe I/O must be a multiple of 4KiB")]
    [InlineData(4096, 0, "random", "workloads:0:nvme:queueDepth = 0: must be in [1, 1024]")]
    [InlineData(4096, 2048, "random", "workloads:0:nvme:queueDepth = 2048: must be in [1, 1024]")]
    [InlineData(4096, 32, "zigzag", "workloads:0:nvme:pattern = zigzag: allowed values are random, sequential")]
    public void Option_errors_name_the_key_and_what_is_allowed(int bytes, int qd, string pattern, string expected)
    {
        var errors = new List<string>();
        Nvme(bytes: bytes, qd: qd, pattern: pattern).Validate("workloads:0", errors);
        Assert.Contains(errors, m => m.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Queues_outside_the_dma_regions_and_a_missing_dma_api_are_errors_naming_the_key()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("ssd0", 4, regionBytes: 8UL << 20); // exactly the data window: no room for the queues
        var e = Assert.Throws<ArgumentException>(() => new NvmeWorkload(Nvme(), dev, h.Scheduler, new RequestBudget(0, 1), ModelHarness.Rng(1), null, "workloads:1"));
        Assert.Contains("workloads:1:nvme:queueIova = 0x100800000", e.Message, StringComparison.Ordinal);
        var w2 = new NvmeWorkload(Nvme(policy: "map-per-io"), h.AddDevice("ssd1", 5), h.Scheduler, new RequestBudget(0, 1), ModelHarness.Rng(1), null, "workloads:1");
        var e2 = Assert.Throws<InvalidOperationException>(() => h.Run([w2]));
        Assert.Contains("workloads:1:nvme:bufferPolicy = map-per-io: needs the run-time DMA API", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Faulting_data_dmas_complete_their_commands_as_faulted()
    {
        var (w, _) = RunNvme(Nvme(qd: 8, policy: "map-per-io"), 100,
            makeApi: h => new FakeDmaApi(h.Scheduler, "strict", 50, 50, 0x9_0000_0000, 16UL << 20));
        Assert.Equal(100, w.Stats.Completed);
        Assert.Equal(100, w.Stats.Faulted);
        Assert.Equal(0, w.Stats.Bytes);
        Assert.Equal(100, Value(w, "commandsFaulted"));
    }
}

