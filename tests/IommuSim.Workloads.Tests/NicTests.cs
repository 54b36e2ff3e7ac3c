using IommuSim.Engine.Units;
using IommuSim.Hardware.Devices;
using IommuSim.Workloads.Nic;

namespace IommuSim.Workloads.Tests;

public class NicTests
{
    private const ulong Ring = ModelHarness.RegionIova;

    private static WorkloadOptions Nic(string type, double mpps, string arrival = "constant", int ring = 64, int bytes = 1500,
        string policy = "recycle", double driverNs = 0)
        => new()
        {
            Device = "nic0",
            Type = type,
            Bytes = new ByteSize(bytes),
            Arrival = arrival,
            Nic = new NicOptions { RingSize = ring, Mpps = mpps, BufferPolicy = policy, DriverNsPerPacket = driverNs },
        };

    private static (NicWorkload Nic, DmaLog Log, ModelHarness H) RunNic(WorkloadOptions o, long packets, long warmup = 0, IDmaApi? api = null,
        Func<ModelHarness, IDmaApi>? makeApi = null, ulong seed = 1)
    {
        var h = new ModelHarness(seed);
        var dev = h.AddDevice("nic0", 3);
        api ??= makeApi?.Invoke(h);
        var w = new NicWorkload(o, dev, h.Scheduler, new RequestBudget(warmup, packets), ModelHarness.Rng(seed), api, "workloads:0");
        var log = new DmaLog();
        w.Observer = log;
        h.Run([w]);
        return (w, log, h);
    }

    private static double Value(NicWorkload w, string key) => w.Summary().Single(kv => kv.Key == key).Value;

    [Fact]
    public void Rx_each_packet_is_descriptor_fetch_then_buffer_write_then_write_back()
    {
        // 40 packets, slow constant arrivals: no overlap, no wrap of the 64-entry ring.
        var (w, log, _) = RunNic(Nic("nic-rx", mpps: 0.5), packets: 40);
        ulong bufBase = w.BufferIova;
        Assert.Equal(Ring + 4096, bufBase); // the pool starts on the first 4 KiB boundary after the 1 KiB ring

        var fetches = log.Entries.Where(e => !e.Write && e.Iova >= Ring && e.Iova < Ring + 64 * 16).ToList();
        var buffers = log.Entries.Where(e => e.Iova >= bufBase).ToList();
        var writeBacks = log.Entries.Where(e => e.Write && e.Iova < bufBase).ToList();
        Assert.Equal(log.Entries.Count, fetches.Count + buffers.Count + writeBacks.Count);
        Assert.Equal(40, buffers.Count);
        Assert.All(buffers, b => Assert.True(b.Write && b.Bytes == 1500));
        Assert.Equal(40, writeBacks.Count);
        Assert.All(writeBacks, b => Assert.Equal(16, b.Bytes));
        // Descriptors are fetched in batches of descriptorFetchBatch (8): 128-byte reads.
        Assert.All(fetches, f => Assert.Equal(8 * 16, f.Bytes));
        // The NIC prefetches its whole cache (64 descriptors, 8 reads) before the first packet
        // arrives (and the measured phase resets the stats); then a read whenever 8 more are posted.
        Assert.Equal(8 + w.Stats.DescriptorFetches, fetches.Count);
        // 39 refills were posted (the run ends at the 40th write-back, before its refill): 4 reads.
        Assert.Equal(39 / 8, w.Stats.DescriptorFetches);

        for (int i = 0; i < 40; i++)
        {
            ulong desc = Ring + (ulong)i * 16;
            int fetch = log.Entries.FindIndex(e => !e.Write && e.Iova <= desc && desc < e.Iova + (ulong)e.Bytes);
            int buf = log.Entries.FindIndex(e => e.Iova == bufBase + (ulong)i * 2048);
            int wb = log.Entries.FindIndex(e => e.Write && e.Iova == desc);
            Assert.True(fetch >= 0 && fetch < buf && buf < wb, $"packet {i}: fetch {fetch}, buffer {buf}, write-back {wb}");
        }
        Assert.Equal(40, w.Stats.Delivered);
        Assert.Equal(0, w.Stats.Dropped);
        Assert.Equal(40, w.Stats.BufferDmas);
        Assert.Equal(40, w.Stats.WriteBacks);
        Assert.Equal(40, w.Stats.PacketLatency.Count);
    }

    [Fact]
    public void Tx_each_packet_is_descriptor_fetch_then_buffer_read_then_write_back()
    {
        var (w, log, _) = RunNic(Nic("nic-tx", mpps: 0.5), packets: 30);
        ulong bufBase = w.BufferIova;
        var buffers = log.Entries.Where(e => e.Iova >= bufBase).ToList();
        Assert.Equal(30, buffers.Count);
        Assert.All(buffers, b => Assert.True(!b.Write && b.Bytes == 1500));
        var ringOps = log.Entries.Where(e => e.Iova < bufBase).ToList();
        Assert.Equal(30, ringOps.Count(e => e.Write && e.Bytes == 16));
        // TX fetches what the driver posted: with slow arrivals one descriptor at a time.
        Assert.Equal(30, ringOps.Count(e => !e.Write));
        for (int i = 0; i < 30; i++)
        {
            ulong desc = Ring + (ulong)i * 16;
            int fetch = log.Entries.FindIndex(e => !e.Write && e.Iova == desc);
            int buf = log.Entries.FindIndex(e => e.Iova == bufBase + (ulong)i * 2048);
            int wb = log.Entries.FindIndex(e => e.Write && e.Iova == desc);
            Assert.True(fetch >= 0 && fetch < buf && buf < wb, $"packet {i}: fetch {fetch}, buffer {buf}, write-back {wb}");
        }
        Assert.Equal(30, w.Stats.Delivered);
    }

    [Fact]
    public void Rx_packets_arriving_to_a_full_ring_are_dropped()
    {
        // The driver needs 2 µs per refill (0.5 Mpps) and 2 Mpps arrive: the ring fills and packets drop.
        var (slow, _, _) = RunNic(Nic("nic-rx", mpps: 2, driverNs: 2000), packets: 2000);
        Assert.True(slow.Stats.DroppedRingFull > 500, $"dropped {slow.Stats.DroppedRingFull}");
        Assert.Equal(slow.Stats.Offered, slow.Stats.Delivered + slow.Stats.Dropped);
        Assert.Equal(2000, slow.Stats.Offered);
        Assert.True(Value(slow, "ringFullFraction") > 0.5);
        Assert.Equal(64, Value(slow, "ringOccupancyMax"));
        Assert.InRange(Value(slow, "mpps"), 0.4, 0.6); // the driver's rate

        var (fast, _, _) = RunNic(Nic("nic-rx", mpps: 2), packets: 2000);
        Assert.Equal(0, fast.Stats.Dropped);
        Assert.Equal(2000, fast.Stats.Delivered);
        Assert.InRange(Value(fast, "mpps"), 1.9, 2.1);
    }

    [Fact]
    public void Tx_packets_handed_over_with_every_slot_in_use_are_dropped()
    {
        var (w, _, _) = RunNic(Nic("nic-tx", mpps: 2, driverNs: 2000), packets: 1500);
        Assert.True(w.Stats.DroppedRingFull > 300, $"dropped {w.Stats.DroppedRingFull}");
        Assert.Equal(w.Stats.Offered, w.Stats.Delivered + w.Stats.Dropped);
    }

    private static WorkloadOptions Paced(string type, double mpps, double lineRateGbps, int fifo = 256, string arrival = "poisson")
    {
        var o = Nic(type, mpps, arrival: arrival, ring: 1024);
        o.Nic.LineRateGbps = lineRateGbps;
        o.Nic.FifoPackets = fifo;
        return o;
    }

    [Fact]
    public void Tx_with_a_line_rate_sends_no_faster_than_the_port()
    {
        // 20 Mpps of 1500-byte packets offered (243 Gbit/s on the wire) to a 100 Gbit/s port: the port sends
        // 100 × 1500 / 1520 = 98.7 Gbit/s of packets; the rest back up into the ring and are dropped there.
        var paced = RunNic(Paced("nic-tx", mpps: 20, lineRateGbps: 100), packets: 20_000, warmup: 2000).Nic;
        Assert.InRange(Value(paced, "throughputGbps"), 0.97 * 98.684, 1.005 * 98.684);
        Assert.True(paced.Stats.DroppedRingFull > 5000, $"dropped {paced.Stats.DroppedRingFull}");
        // Without a port the same load is limited by PCIe and the IOMMU only, far above 100 Gbit/s.
        var unpaced = RunNic(Nic("nic-tx", mpps: 20, arrival: "poisson", ring: 1024), packets: 20_000, warmup: 2000).Nic;
        Assert.True(Value(unpaced, "throughputGbps") > 150, $"unpaced {Value(unpaced, "throughputGbps")} Gbit/s");
    }

    [Fact]
    public void Tx_with_a_line_rate_writes_back_after_the_packet_left()
    {
        // One packet at a time (slow arrivals): its latency is fetch + read + wire time + write-back, so it
        // exceeds the unpaced latency by the 1520-byte wire time at 10 Gbit/s, 1216 ns.
        var paced = RunNic(Paced("nic-tx", mpps: 0.05, lineRateGbps: 10, arrival: "constant"), packets: 50).Nic;
        var unpaced = RunNic(Nic("nic-tx", mpps: 0.05, ring: 1024), packets: 50).Nic;
        double extra = Value(paced, "latencyNs.mean") - Value(unpaced, "latencyNs.mean"); // means: the p50s are histogram-bucket edges
        Assert.InRange(extra, 1216 - 10, 1216 + 10);
        Assert.Equal(50, paced.Stats.Delivered);
    }

    [Fact]
    public void Tx_with_a_line_rate_reads_at_most_the_fifo_ahead_of_the_wire()
    {
        // A 4-packet FIFO in front of a slow port: buffer reads never get more than 4 packets ahead of the
        // packets sent, so reads are spaced by the wire time once the FIFO is full.
        var (w, log, _) = RunNic(Paced("nic-tx", mpps: 5, lineRateGbps: 10, fifo: 4, arrival: "constant"), packets: 200);
        var reads = log.Entries.Where(e => e.Iova >= w.BufferIova).Select(e => e.TimePs).ToList();
        Assert.Equal(200, reads.Count);
        double span = (reads[^1] - reads[10]) / 1000.0 / (reads.Count - 11); // ns between reads in steady state
        Assert.InRange(span, 1216 * 0.99, 1216 * 1.01);
        Assert.Equal(200, w.Stats.Delivered);
    }

    [Fact]
    public void Rx_with_a_line_rate_receives_a_burst_one_wire_time_apart()
    {
        // Bursts of 16 packets sent at one instant: on a 10 Gbit/s port the NIC gets them 1216 ns apart (1520 wire
        // bytes each), so its buffer writes are at least that far apart; without a port model they all land at once.
        static List<long> BufferWrites(double lineRate)
        {
            var o = Nic("nic-rx", mpps: 0.1, arrival: "bursty", ring: 256);
            o.BurstSize = 16;
            o.Nic.LineRateGbps = lineRate;
            var (w, log, _) = RunNic(o, packets: 160);
            Assert.Equal(160, w.Stats.Delivered);
            return log.Entries.Where(e => e.Iova >= w.BufferIova && e.Write).Select(e => e.TimePs).ToList();
        }
        var paced = BufferWrites(10);
        var gaps = paced.Zip(paced.Skip(1), (a, b) => (b - a) / 1000.0).ToList();
        Assert.True(gaps.Min() >= 1216 * 0.99, $"smallest gap {gaps.Min()} ns");
        var unpaced = BufferWrites(0);
        var unpacedGaps = unpaced.Zip(unpaced.Skip(1), (a, b) => (b - a) / 1000.0).ToList();
        Assert.True(unpacedGaps.Min() < 300, $"smallest unpaced gap {unpacedGaps.Min()} ns");
    }

    [Fact]
    public void Rx_offered_beyond_the_line_rate_is_a_config_error()
    {
        var o = Paced("nic-rx", mpps: 20, lineRateGbps: 100);
        var errors = new List<string>();
        o.Validate("workloads:0", errors);
        Assert.Contains(errors, e => e.StartsWith("workloads:0:nic:lineRateGbps = 100:", StringComparison.Ordinal) && e.Contains("243.2 Gbit/s"));
        o.Nic.Mpps = 8; // 97.3 Gbit/s on the wire
        errors.Clear();
        o.Validate("workloads:0", errors);
        Assert.Empty(errors);
    }

    private static Func<ModelHarness, IDmaApi> Api(string mode, double mapNs, double unmapNs)
        => h => new FakeDmaApi(h.Scheduler, mode, mapNs, unmapNs, ModelHarness.RegionIova + (16UL << 20), 32UL << 20);

    [Fact]
    public void Map_per_packet_with_slow_strict_unmap_starves_the_ring()
    {
        // 4 Mpps of 1500-byte packets (~48 Gbit/s), 256-entry ring.
        const long packets = 4000;
        var recycle = RunNic(Nic("nic-rx", mpps: 4, arrival: "poisson", ring: 256), packets, warmup: 500).Nic;
        var lazy = RunNic(Nic("nic-rx", mpps: 4, arrival: "poisson", ring: 256, policy: "map-per-packet"), packets, warmup: 500,
            makeApi: Api("lazy", 80, 60)).Nic;
        var strict = RunNic(Nic("nic-rx", mpps: 4, arrival: "poisson", ring: 256, policy: "map-per-packet"), packets, warmup: 500,
            makeApi: Api("strict", 80, 1500)).Nic;

        double gRecycle = Value(recycle, "throughputGbps"), gLazy = Value(lazy, "throughputGbps"), gStrict = Value(strict, "throughputGbps");
        Assert.Equal(0, recycle.Stats.Dropped);
        Assert.True(lazy.Stats.Dropped < packets / 100, $"lazy dropped {lazy.Stats.Dropped}");
        Assert.InRange(gLazy, 0.95 * gRecycle, 1.05 * gRecycle);
        // Strict: one refill costs ≈ 1.58 µs of driver time (unmap + map) → ≈ 0.63 Mpps.
        Assert.True(gStrict < 0.25 * gRecycle, $"strict {gStrict} vs recycle {gRecycle} Gbit/s");
        Assert.InRange(Value(strict, "mpps"), 0.5, 0.7);
        Assert.True(strict.Stats.DroppedRingFull > packets / 2);
        Assert.True(Value(strict, "ringFullFraction") > 0.8);
        Assert.True(Value(strict, "driverBusyFraction") > 0.95);
        // Every refill unmaps once, then maps once (the run may stop between the two).
        Assert.InRange(strict.Stats.Unmaps - strict.Stats.Maps, 0, 1);
        Assert.InRange(Value(strict, "unmapLatencyNs.mean"), 1499, 1501);
        Assert.Equal(0, Value(strict, "bufferWindowBytes"));
    }

    [Fact]
    public void Map_per_packet_buffers_come_from_the_dma_api_and_every_one_is_unmapped_after_use()
    {
        FakeDmaApi? api = null;
        var (w, log, _) = RunNic(Nic("nic-rx", mpps: 1, ring: 32, policy: "map-per-packet"), packets: 100,
            makeApi: h => api = new FakeDmaApi(h.Scheduler, "strict", 50, 200, ModelHarness.RegionIova + (16UL << 20), 32UL << 20));
        Assert.NotNull(api);
        // Initial fill maps 32 buffers; each packet's refill unmaps one and then maps one (the run
        // ends with the last packet, possibly before the last refills finished).
        Assert.InRange(api.Unmaps, w.Stats.Delivered - 2, w.Stats.Delivered);
        Assert.InRange(api.Maps - 32, api.Unmaps - 1, api.Unmaps);
        Assert.Equal(32, api.MaxLive);
        var buffers = log.Entries.Where(e => e.Bytes == 1500).ToList();
        Assert.Equal(100, buffers.Count);
        Assert.All(buffers, b => Assert.True(b.Iova >= ModelHarness.RegionIova + (16UL << 20)));
        Assert.Equal(100, buffers.Select(b => b.Iova).Distinct().Count()); // a fresh mapping per packet
    }

    [Fact]
    public void Tx_map_per_packet_with_slow_unmap_loses_throughput()
    {
        var lazy = RunNic(Nic("nic-tx", mpps: 3, arrival: "poisson", ring: 256, policy: "map-per-packet"), 3000, warmup: 300,
            makeApi: Api("lazy", 80, 60)).Nic;
        var strict = RunNic(Nic("nic-tx", mpps: 3, arrival: "poisson", ring: 256, policy: "map-per-packet"), 3000, warmup: 300,
            makeApi: Api("strict", 80, 1500)).Nic;
        Assert.True(Value(strict, "throughputGbps") < 0.5 * Value(lazy, "throughputGbps"),
            $"strict {Value(strict, "throughputGbps")} vs lazy {Value(lazy, "throughputGbps")}");
        Assert.True(strict.Stats.DroppedRingFull > 0);
        Assert.Equal(0, lazy.Stats.Dropped);
    }

    [Fact]
    public void Same_seed_gives_the_same_stats_and_another_seed_does_not()
    {
        static IReadOnlyList<KeyValuePair<string, double>> Once(ulong seed)
            => RunNic(Nic("nic-rx", mpps: 6, arrival: "poisson", ring: 128), 3000, warmup: 200, seed: seed).Nic.Summary();
        var a = Once(7);
        var b = Once(7);
        var c = Once(8);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Map_per_packet_uses_the_runners_dma_api_and_without_one_fails_naming_the_key()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("nic0", 3);
        var w = new NicWorkload(Nic("nic-rx", 1, ring: 16, policy: "map-per-packet"), dev, h.Scheduler, new RequestBudget(0, 10), ModelHarness.Rng(1), null, "workloads:2");
        var e = Assert.Throws<InvalidOperationException>(() => h.Run([w]));
        Assert.Contains("workloads:2:nic:bufferPolicy = map-per-packet: needs the run-time DMA API", e.Message, StringComparison.Ordinal);

        // The runner sets WorkloadDriver.DmaApi after construction; the model picks it up at start.
        var h2 = new ModelHarness();
        var dev2 = h2.AddDevice("nic0", 3);
        var api = new FakeDmaApi(h2.Scheduler, "lazy", 50, 50, ModelHarness.RegionIova + (16UL << 20), 16UL << 20);
        var w2 = new NicWorkload(Nic("nic-rx", 1, ring: 16, policy: "map-per-packet"), dev2, h2.Scheduler, new RequestBudget(0, 10), ModelHarness.Rng(1), null, "workloads:2")
        {
            DmaApi = api,
        };
        h2.Run([w2]);
        Assert.Equal(10, w2.Stats.Delivered);
        Assert.True(api.Maps >= 16 + 9);
    }

    [Fact]
    public void Ring_and_pool_outside_the_dma_regions_are_errors_naming_the_key()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("nic0", 3, regionBytes: 1UL << 20);
        var o = Nic("nic-rx", 1, ring: 1024); // 1024 × 2 KiB buffers do not fit in 1 MiB
        var e = Assert.Throws<ArgumentException>(() => new NicWorkload(o, dev, h.Scheduler, new RequestBudget(0, 10), ModelHarness.Rng(1), null, "workloads:0"));
        Assert.Contains("workloads:0:nic:bufferIova", e.Message, StringComparison.Ordinal);
        o.Nic.RingIova = new Address(ModelHarness.RegionIova + (1UL << 20));
        var errors = new List<string>();
        o.ValidateLayout("workloads:0", dev.Options, errors);
        Assert.Contains(errors, m => m.StartsWith("workloads:0:nic:ringIova = 0x100100000", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("closed", 0, 1.0, "recycle", 2048, "workloads:0:arrival = closed")]
    [InlineData("poisson", 10, 1.0, "recycle", 2048, "workloads:0:nic:mpps = 1: set either offeredGbps or mpps")]
    [InlineData("poisson", 0, 0.0, "recycle", 2048, "workloads:0:nic:offeredGbps: a NIC workload needs an offered load")]
    [InlineData("poisson", 0, 1.0, "reuse", 2048, "workloads:0:nic:bufferPolicy = reuse: allowed values are recycle, map-per-packet")]
    [InlineData("poisson", 0, 1.0, "recycle", 1024, "workloads:0:nic:bufferBytes = 1KiB: must be in [bytes (1500), 64KiB]")]
    public void Option_errors_name_the_key_and_what_is_allowed(string arrival, double gbps, double mpps, string policy, int bufferBytes, string expected)
    {
        var o = new WorkloadOptions
        {
            Device = "nic0", Type = "nic-rx", Bytes = new ByteSize(1500), Arrival = arrival,
            Nic = new NicOptions { OfferedGbps = gbps, Mpps = mpps, BufferPolicy = policy, BufferBytes = new ByteSize(bufferBytes) },
        };
        var errors = new List<string>();
        o.Validate("workloads:0", errors);
        Assert.Contains(errors, m => m.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Offered_gbps_counts_wire_overhead()
    {
        var n = new NicOptions { OfferedGbps = 100 };
        Assert.Equal(100e9 / (8 * 1520.0), n.PacketsPerSecond(1500), 6);
        n = new NicOptions { Mpps = 14.88 };
        Assert.Equal(14.88e6, n.PacketsPerSecond(64), 6);
    }

    [Fact]
    public void Rx_packets_beyond_the_nic_fifo_are_dropped_while_descriptors_remain()
    {
        // One DMA tag: the NIC moves one thing at a time, so arriving packets pile up in its FIFO.
        var h = new ModelHarness();
        var dev = h.AddDevice("nic0", 3, maxOutstanding: 1);
        var o = Nic("nic-rx", mpps: 8, ring: 1024);
        o.Nic.FifoPackets = 16;
        var w = new NicWorkload(o, dev, h.Scheduler, new RequestBudget(0, 3000), ModelHarness.Rng(1), null, "workloads:0");
        h.Run([w]);
        Assert.True(w.Stats.DroppedFifoFull > 1000, $"fifo drops {w.Stats.DroppedFifoFull}");
        Assert.Equal(0, w.Stats.DroppedRingFull);
        Assert.Equal(3000, w.Stats.Delivered + w.Stats.Dropped);
        Assert.True(Value(w, "ringOccupancyMax") <= 16 + 1);
    }

    [Fact]
    public void Warm_up_packets_are_not_counted_and_rates_use_the_window_given()
    {
        var (w, _, h) = RunNic(Nic("nic-rx", mpps: 2), packets: 1000, warmup: 400);
        Assert.Equal(1000, w.Stats.Offered);
        Assert.Equal(1000, w.Stats.Delivered);
        Assert.Equal(1000, w.Stats.PacketLatency.Count);
        // Own window: ≈ 1000 packets at 2 Mpps = 500 µs.
        Assert.InRange(Value(w, "mpps"), 1.95, 2.05);
        var given = w.Summary(windowNs: 1_000_000).ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(1.0, given["mpps"], 6);                     // 1000 packets in 1 ms
        Assert.Equal(1000 * 1500 * 8 / 1e6, given["throughputGbps"], 6);
        Assert.True(h.Scheduler.Now > 0);
    }

    [Fact]
    public void Bursty_arrivals_fill_the_ring_where_the_same_mean_rate_does_not()
    {
        static WorkloadOptions O(string arrival)
        {
            var o = Nic("nic-rx", mpps: 1, arrival: arrival, ring: 32, driverNs: 600);
            o.BurstSize = 64;
            return o;
        }
        var smooth = RunNic(O("constant"), 4000).Nic;
        var bursty = RunNic(O("bursty"), 4000).Nic;
        Assert.Equal(0, smooth.Stats.Dropped);
        Assert.True(bursty.Stats.DroppedRingFull > 400, $"bursty drops {bursty.Stats.DroppedRingFull}");
    }

    [Fact]
    public void Recycle_buffers_cycle_through_the_pool_window()
    {
        var o = Nic("nic-rx", mpps: 1, ring: 16);
        o.Nic.BufferCount = 48;
        var (w, log, _) = RunNic(o, packets: 200);
        var iovas = log.Entries.Where(e => e.Bytes == 1500).Select(e => e.Iova).ToList();
        Assert.Equal(48, iovas.Distinct().Count());
        // Packet j lands in pool buffer j mod 48: the refills hand the pool out round-robin.
        for (int j = 0; j < iovas.Count; j++) Assert.Equal(w.BufferIova + (ulong)(j % 48) * 2048, iovas[j]);
        Assert.Equal(48 * 2048, Value(w, "bufferWindowBytes"));
    }

    [Fact]
    public void Faulting_buffer_dmas_complete_their_packets_as_faulted_and_the_ring_keeps_going()
    {
        // The fake DMA API hands out IOVAs outside anything the IOMMU maps: every buffer DMA faults.
        var (w, _, h) = RunNic(Nic("nic-rx", mpps: 1, ring: 32, policy: "map-per-packet"), packets: 200,
            makeApi: hh => new FakeDmaApi(hh.Scheduler, "strict", 50, 50, 0x9_0000_0000, 16UL << 20));
        Assert.Equal(200, w.Stats.Faulted);
        Assert.Equal(0, w.Stats.Delivered);
        Assert.Equal(200, w.Stats.DmaFaults);
        Assert.Equal(0, Value(w, "throughputGbps"));
        Assert.True(h.Platform.Iommu.Faults.Count >= 200);
    }

    [Fact]
    public void Packets_spread_over_the_queues_each_with_its_own_ring_and_pool()
    {
        var o = Nic("nic-rx", mpps: 4, arrival: "poisson", ring: 64);
        o.Nic.Queues = 4;
        var (w, log, _) = RunNic(o, packets: 4000);
        Assert.Equal(4, w.QueueCount);
        Assert.Equal(Ring + 3 * 4096, w.RingIovaOf(3)); // 1 KiB rings, each on its own 4 KiB page
        Assert.Equal(Ring + 4 * 4096, w.BufferIova);      // pools after all rings
        Assert.Equal(4 * 64 * 2048, Value(w, "bufferWindowBytes"));
        Assert.Equal(4000, w.Stats.Delivered);
        for (int q = 0; q < 4; q++)
        {
            ulong ring = w.RingIovaOf(q);
            int writeBacks = log.Entries.Count(e => e.Write && e.Bytes == 16 && e.Iova >= ring && e.Iova < ring + 1024);
            Assert.InRange(writeBacks, 850, 1150); // ≈ 1000 each: uniform spreading
            ulong pool = w.BufferIova + (ulong)q * 64 * 2048;
            Assert.InRange(log.Entries.Count(e => e.Bytes == 1500 && e.Iova >= pool && e.Iova < pool + 64 * 2048), 850, 1150);
        }
    }

    [Fact]
    public void Each_queue_has_its_own_driver_cpu_so_map_per_packet_scales_with_queues()
    {
        WorkloadOptions O(int queues)
        {
            var o = Nic("nic-rx", mpps: 4, arrival: "poisson", ring: 128, policy: "map-per-packet");
            o.Nic.Queues = queues;
            return o;
        }
        // One refill costs ≈ 1.58 µs of driver time: one CPU delivers ≈ 0.63 Mpps, four ≈ 2.5 Mpps.
        // The warm-up drains the descriptors posted at start (4 × 128) so the rings are starved.
        var one = RunNic(O(1), 4000, warmup: 2000, makeApi: Api("strict", 80, 1500)).Nic;
        var four = RunNic(O(4), 4000, warmup: 2000, makeApi: Api("strict", 80, 1500)).Nic;
        Assert.InRange(Value(one, "mpps"), 0.55, 0.7);
        Assert.InRange(Value(four, "mpps"), 2.2, 2.8);
        Assert.True(Value(four, "driverBusyFraction") > 0.9);
    }

    [Fact]
    public void Write_backs_cover_several_descriptors_under_load_and_flush_when_idle()
    {
        var busy = Nic("nic-rx", mpps: 8, arrival: "poisson", ring: 256);
        busy.Nic.WriteBackBatch = 4;
        var (w, log, _) = RunNic(busy, packets: 4000, warmup: 200);
        Assert.Equal(4000, w.Stats.Delivered);
        Assert.InRange(Value(w, "descriptorsPerWriteBack"), 2.0, 4.0);
        var writeBacks = log.Entries.Where(e => e.Write && e.Iova < w.BufferIova).ToList();
        Assert.All(writeBacks, e => Assert.True(e.Bytes is 16 or 32 or 48 or 64, $"{e.Bytes}-byte write-back"));
        Assert.Contains(writeBacks, e => e.Bytes == 64);
        Assert.Equal(4200, writeBacks.Sum(e => e.Bytes / 16)); // every packet's descriptor written back exactly once

        var idle = Nic("nic-rx", mpps: 0.2, ring: 64);
        idle.Nic.WriteBackBatch = 4;
        var (wi, _, _) = RunNic(idle, packets: 50);
        Assert.Equal(50, wi.Stats.Delivered);
        Assert.Equal(1.0, Value(wi, "descriptorsPerWriteBack")); // alone in the NIC: no waiting for a batch
    }
}

