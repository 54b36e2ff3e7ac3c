using IommuSim.Engine.Units;
using IommuSim.Hardware.Devices;
using IommuSim.Workloads.Nic;

namespace IommuSim.Workloads.Tests;

/// <summary>
/// nic.iovaBatch (contiguous IOVAs per descriptor batch, Rubin et al. SOSP'24) and nic.txFraction (a transmit
/// stream sharing the device, its DMA API and the driver CPUs with receive).
/// </summary>
public class NicIovaBatchTests
{
    private const ulong Window = ModelHarness.RegionIova + (16UL << 20);

    private static WorkloadOptions Rx(int batch = 1, double txFraction = 0, int ring = 64, string policy = "map-per-packet", string type = "nic-rx")
        => new()
        {
            Device = "nic0",
            Type = type,
            Bytes = new ByteSize(4096),
            Arrival = "constant",
            Nic = new NicOptions
            {
                RingSize = ring, Mpps = 1, BufferPolicy = policy, BufferBytes = new ByteSize(4096),
                IovaBatch = batch, TxFraction = txFraction,
            },
        };

    private static (NicWorkload Nic, DmaLog Log, FakeDmaApi Api) Run(WorkloadOptions o, long packets)
    {
        var h = new ModelHarness(1);
        var dev = h.AddDevice("nic0", 3);
        var api = new FakeDmaApi(h.Scheduler, "strict", 100, 300, Window, 32UL << 20);
        var w = new NicWorkload(o, dev, h.Scheduler, new RequestBudget(0, packets), ModelHarness.Rng(1), api, "workloads:0");
        var log = new DmaLog();
        w.Observer = log;
        h.Run([w]);
        return (w, log, api);
    }

    [Fact]
    public void A_batch_of_ring_buffers_is_one_map_of_one_contiguous_range()
    {
        var (w, log, api) = Run(Rx(batch: 8), packets: 200);
        var buffers = log.Entries.Where(e => e.Write && e.Bytes == 4096).Select(e => e.Iova).ToList();
        Assert.Equal(200, buffers.Count);
        // One queue, in-order receive: packets 8j … 8j+7 use slots of one batch, whose buffers are consecutive pages.
        for (int j = 0; j + 8 <= buffers.Count; j += 8)
            for (int k = 1; k < 8; k++)
                Assert.Equal(buffers[j] + (ulong)k * 4096, buffers[j + k]);
        // Initial fill: 64 / 8 maps; then one unmap + map per 8 received packets (the run may stop mid-refill).
        long refills = api.Unmaps;
        Assert.InRange(refills, 200 / 8 - 1, 200 / 8);
        Assert.InRange(api.Maps, 64 / 8 + refills - 1, 64 / 8 + refills);
        Assert.Equal(200, w.Stats.Delivered);
    }

    [Fact]
    public void Without_a_batch_every_buffer_is_its_own_map()
    {
        var (_, _, api) = Run(Rx(batch: 1), packets: 200);
        Assert.InRange(api.Maps, 64 + 199, 64 + 200);
    }

    [Theory]
    [InlineData(3, "nic-rx", "map-per-packet", "workloads:0:nic:iovaBatch = 3: must be a power of two in [1, 256]")]
    [InlineData(64, "nic-rx", "map-per-packet", "workloads:0:nic:iovaBatch = 64: must be at most ringSize / 2 (32)")]
    [InlineData(8, "nic-rx", "recycle", "workloads:0:nic:iovaBatch = 8: needs bufferPolicy = map-per-packet")]
    [InlineData(8, "nic-tx", "map-per-packet", "workloads:0:nic:iovaBatch = 8: batched IOVAs are for the receive ring (type nic-rx)")]
    public void Bad_batches_are_named(int batch, string type, string policy, string error)
    {
        var errors = new List<string>();
        Rx(batch: batch, policy: policy, type: type).Validate("workloads:0", errors);
        Assert.Contains(error, errors);
    }

    [Fact]
    public void The_transmit_stream_sends_its_share_on_the_same_device_through_the_same_dma_api()
    {
        var (w, log, api) = Run(Rx(txFraction: 0.5), packets: 400);
        Assert.True(w.HasTxStream);
        Assert.Equal(400, w.Stats.Delivered); // the run's budget counts received packets only
        // One transmitted packet per two received (accumulated per queue), less those still in flight at the end.
        Assert.InRange(w.TxStats.Offered, 199, 200);
        Assert.InRange(w.TxStats.Delivered, 190, 200);
        var txReads = log.Entries.Where(e => !e.Write && e.Bytes == 66).ToList();
        Assert.InRange(txReads.Count, 190, 200);
        // TX buffers are mapped through the same DMA API: RX refills (≈ 400) + TX maps (≈ 200) + the first fill.
        Assert.InRange(api.Maps, 64 + 399 + 190, 64 + 400 + 200);
        // The TX ring follows the RX ring: its descriptors are fetched from the next 4 KiB.
        ulong txRing = ModelHarness.RegionIova + 4096;
        Assert.Contains(log.Entries, e => !e.Write && e.Iova >= txRing && e.Iova < txRing + 64 * 16);
        var keys = w.Summary().Select(kv => kv.Key).ToList();
        Assert.Contains("tx.packetsDelivered", keys);
        Assert.Contains("tx.throughputGbps", keys);
    }

    [Fact]
    public void Without_a_transmit_stream_the_summary_is_unchanged()
    {
        var (w, _, _) = Run(Rx(), packets: 50);
        Assert.False(w.HasTxStream);
        Assert.DoesNotContain(w.Summary(), kv => kv.Key.StartsWith("tx.", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1.5, "nic-rx", "map-per-packet", "workloads:0:nic:txFraction = 1.5: must be in [0, 1]")]
    [InlineData(0.5, "nic-rx", "recycle", "workloads:0:nic:txFraction = 0.5: needs bufferPolicy = map-per-packet (transmit buffers are mapped through the DMA API)")]
    [InlineData(0.5, "nic-tx", "map-per-packet", "workloads:0:nic:txFraction = 0.5: the transmit stream rides on a receive workload (type nic-rx); use type nic-tx for transmit alone")]
    public void Bad_transmit_streams_are_named(double fraction, string type, string policy, string error)
    {
        var errors = new List<string>();
        Rx(txFraction: fraction, policy: policy, type: type).Validate("workloads:0", errors);
        Assert.Contains(error, errors);
    }
}
