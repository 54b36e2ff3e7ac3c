using System.Globalization;
using IommuSim.Engine.Units;

namespace IommuSim.Workloads.Nic;

/// <summary>
/// NIC model keys (<c>workloads[].nic</c>, used by the <c>nic-rx</c> and <c>nic-tx</c> types). The
/// packet size is the workload's <c>bytes</c>; arrivals are the workload's <c>arrival</c>
/// (<c>poisson</c>, <c>constant</c> or <c>bursty</c> with <c>burstSize</c>) at the rate given here.
/// </summary>
public sealed class NicOptions
{
    /// <summary>Queues (RSS): each its own ring, buffers and driver CPU context; packets spread uniformly over them (1–4096). Default 1.</summary>
    public int Queues { get; set; } = 1;
    /// <summary>Descriptors in each queue's ring (power of two, 16–65536). Default 1024.</summary>
    public int RingSize { get; set; } = 1024;
    /// <summary>First ring's IOVA (4 KiB aligned, inside a dmaRegion); queue q's ring follows at q × the ring size rounded up to 4 KiB. Default: the workload's <c>iova</c>, else the device's first dmaRegion.</summary>
    public Address? RingIova { get; set; }
    /// <summary>Most descriptors fetched by one DMA read (1–256). Default 8.</summary>
    public int DescriptorFetchBatch { get; set; } = 8;
    /// <summary>Most descriptors written back by one DMA write (1–256): the NIC writes back, in ring
    /// order, once this many packets' buffer DMAs are done, or sooner when none of the queue's
    /// buffer DMAs is still in flight. Default 1 (one 16-byte write-back per packet).</summary>
    public int WriteBackBatch { get; set; } = 1;
    /// <summary>On-chip descriptor cache per queue: descriptors fetched (or being fetched) and not yet used (≥ descriptorFetchBatch). Default 64.</summary>
    public int DescriptorCacheEntries { get; set; } = 64;
    /// <summary>RX: packets the NIC holds (all queues) while waiting for their descriptor and buffer DMA (1–65536); more are dropped.
    /// TX with <c>lineRateGbps</c>: packets read from memory and not yet sent (the TX FIFO); the NIC reads no further ahead. Default 256.</summary>
    public int FifoPackets { get; set; } = 256;
    /// <summary>Offered load in Gbit/s on the wire (each packet costs bytes + wireOverheadBytes). Set this or <c>mpps</c>.</summary>
    public double OfferedGbps { get; set; }
    /// <summary>Offered load in million packets per second. Set this or <c>offeredGbps</c>.</summary>
    public double Mpps { get; set; }
    /// <summary>The port's line rate in Gbit/s; 0 (the default) leaves the port out of the model. nic-tx: packets leave
    /// one at a time at this rate (bytes + wireOverheadBytes each), in the order their buffer reads complete; a
    /// descriptor is written back once its packet has been sent. nic-rx: the offered load must not exceed it, and
    /// packets arrive one after another on the wire (each is received when its last bit is in), so a burst is
    /// spread out at the line rate.</summary>
    public double LineRateGbps { get; set; }
    /// <summary>Wire bytes per packet besides <c>bytes</c> (preamble 8 + inter-frame gap 12). Default 20.</summary>
    public int WireOverheadBytes { get; set; } = 20;
    /// <summary><c>recycle</c> (a pool mapped once, reused round-robin) or <c>map-per-packet</c> (each buffer unmapped after use and a new one mapped through the DMA API). Default recycle.</summary>
    public string BufferPolicy { get; set; } = "recycle";
    /// <summary>recycle: buffers in each queue's pool (≥ ringSize; 0 = ringSize). Buffer window = queues × bufferCount × bufferBytes.</summary>
    public int BufferCount { get; set; }
    /// <summary>Bytes per buffer (≥ bytes, ≤ 64 KiB). Default 2 KiB.</summary>
    public ByteSize BufferBytes { get; set; } = new(2048);
    /// <summary>recycle: first buffer's IOVA (queue q's pool follows at q × bufferCount × bufferBytes). Default: the first 4 KiB boundary after the rings.</summary>
    public Address? BufferIova { get; set; }
    /// <summary>Driver CPU time per ring operation (RX refill, TX send, TX reclaim) besides DMA-API calls, ns; each queue has its own CPU. Default 0.</summary>
    public double DriverNsPerPacket { get; set; }
    /// <summary>map-per-packet: fraction of unmaps after which the NIC issues a stray 64-byte DMA to the buffer
    /// just unmapped (a buggy or malicious device); counted in security.staleTranslationsUsed when it gets through.</summary>
    public double StrayDmaFraction { get; set; }

    /// <summary>nic-rx, map-per-packet: ring buffers the driver maps with one DMA-API call into one contiguous IOVA
    /// range and unmaps together once all of them were received (power of two, 1–256, at most ringSize / 2). 1 (the
    /// default): one map and one unmap per buffer. The "contiguous IOVAs per descriptor batch" fix of Rubin et al.
    /// (SOSP'24).</summary>
    public int IovaBatch { get; set; } = 1;
    /// <summary>nic-rx: a transmit stream sharing the device, its IOMMU domain and the driver CPUs: per received packet,
    /// this many packets (0–1, accumulated per queue; 0.5 = one per two received, as TCP's delayed ACK) of
    /// <c>txBytes</c> are sent on the same queue's TX ring, each buffer mapped and unmapped through the DMA API like
    /// nic-tx map-per-packet (needs bufferPolicy = map-per-packet). Default 0: no transmit stream.</summary>
    public double TxFraction { get; set; }
    /// <summary>Bytes per packet of the transmit stream (1–65536). Default 66: a TCP ACK with the timestamp option
    /// (14 Ethernet + 20 IPv4 + 32 TCP; an assumption, RFC 7323).</summary>
    public int TxBytes { get; set; } = 66;

    public const int DescriptorBytes = 16;
    public static readonly string[] BufferPolicies = ["recycle", "map-per-packet"];
    public static readonly string[] Arrivals = ["poisson", "constant", "bursty"];

    [System.Text.Json.Serialization.JsonIgnore]
    public int EffectiveBufferCount => BufferCount == 0 ? RingSize : BufferCount;

    /// <summary>Bytes from one queue's ring to the next (the ring rounded up to 4 KiB).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public ulong RingStride => ((ulong)RingSize * DescriptorBytes + 4095) & ~4095UL;

    /// <summary>Packets per second the configured load offers, for packets of <paramref name="packetBytes"/>.</summary>
    public double PacketsPerSecond(long packetBytes)
        => Mpps > 0 ? Mpps * 1e6 : OfferedGbps * 1e9 / (8.0 * (packetBytes + WireOverheadBytes));

    /// <summary>The offered load in Gbit/s on the wire, for packets of <paramref name="packetBytes"/>.</summary>
    public double WireGbps(long packetBytes) => PacketsPerSecond(packetBytes) * 8.0 * (packetBytes + WireOverheadBytes) / 1e9;

    /// <summary>Picoseconds one packet of <paramref name="packetBytes"/> takes on the wire at <c>lineRateGbps</c> (&gt; 0).</summary>
    public long WirePs(long packetBytes) => (long)Math.Round((packetBytes + WireOverheadBytes) * 8.0 * 1000.0 / LineRateGbps);

    /// <summary>Range checks; <paramref name="workloadPath"/> is <c>workloads:i</c>.</summary>
    public void Validate(string workloadPath, long packetBytes, string arrival, bool rx, List<string> errors)
    {
        static string S(double d) => d.ToString(CultureInfo.InvariantCulture);
        string path = workloadPath + ":nic";
        if (!Arrivals.Contains(arrival)) errors.Add($"{workloadPath}:arrival = {arrival}: a NIC receives (or is handed) packets at an offered rate; allowed values are {string.Join(", ", Arrivals)}");
        if (Queues is < 1 or > 4096) errors.Add($"{path}:queues = {Queues}: must be in [1, 4096]");
        if (RingSize is < 16 or > 65536 || (RingSize & (RingSize - 1)) != 0) errors.Add($"{path}:ringSize = {RingSize}: must be a power of two in [16, 65536]");
        if (RingIova is Address r && (r.Value & 0xFFF) != 0) errors.Add($"{path}:ringIova = {r}: must be 4 KiB aligned");
        if (DescriptorFetchBatch is < 1 or > 256) errors.Add($"{path}:descriptorFetchBatch = {DescriptorFetchBatch}: must be in [1, 256]");
        if (WriteBackBatch is < 1 or > 256) errors.Add($"{path}:writeBackBatch = {WriteBackBatch}: must be in [1, 256]");
        if (DescriptorCacheEntries < DescriptorFetchBatch || DescriptorCacheEntries > 65536) errors.Add($"{path}:descriptorCacheEntries = {DescriptorCacheEntries}: must be in [descriptorFetchBatch ({DescriptorFetchBatch}), 65536]");
        if (FifoPackets is < 1 or > 65536) errors.Add($"{path}:fifoPackets = {FifoPackets}: must be in [1, 65536]");
        if (!(OfferedGbps >= 0 && OfferedGbps <= 10_000)) errors.Add($"{path}:offeredGbps = {S(OfferedGbps)}: must be in [0, 10000]");
        if (!(Mpps >= 0 && Mpps <= 10_000)) errors.Add($"{path}:mpps = {S(Mpps)}: must be in [0, 10000]");
        if (OfferedGbps > 0 && Mpps > 0) errors.Add($"{path}:mpps = {S(Mpps)}: set either offeredGbps or mpps, not both");
        if (OfferedGbps == 0 && Mpps == 0) errors.Add($"{path}:offeredGbps: a NIC workload needs an offered load; set offeredGbps or mpps (> 0)");
        if (!(LineRateGbps >= 0 && LineRateGbps <= 10_000)) errors.Add($"{path}:lineRateGbps = {S(LineRateGbps)}: must be in [0, 10000] (0: no port model)");
        else if (rx && LineRateGbps > 0 && WireGbps(packetBytes) > LineRateGbps * (1 + 1e-9))
            errors.Add($"{path}:lineRateGbps = {S(LineRateGbps)}: the offered load is {S(Math.Round(WireGbps(packetBytes), 3))} Gbit/s on the wire, more than the port can receive; lower offeredGbps/mpps or raise lineRateGbps");
        if (WireOverheadBytes is < 0 or > 4096) errors.Add($"{path}:wireOverheadBytes = {WireOverheadBytes}: must be in [0, 4096]");
        if (!BufferPolicies.Contains(BufferPolicy)) errors.Add($"{path}:bufferPolicy = {BufferPolicy}: allowed values are {string.Join(", ", BufferPolicies)}");
        if (BufferCount != 0 && (BufferCount < RingSize || BufferCount > 1 << 22)) errors.Add($"{path}:bufferCount = {BufferCount}: must be 0 (= ringSize) or in [ringSize ({RingSize}), 4194304]");
        if (BufferBytes.Bytes < packetBytes || BufferBytes.Bytes > 65536) errors.Add($"{path}:bufferBytes = {BufferBytes}: must be in [bytes ({packetBytes}), 64KiB]");
        if (BufferIova is Address b && (b.Value & 0x3F) != 0) errors.Add($"{path}:bufferIova = {b}: must be 64-byte aligned");
        if (!(StrayDmaFraction >= 0 && StrayDmaFraction <= 1)) errors.Add($"{path}:strayDmaFraction = {S(StrayDmaFraction)}: must be in [0, 1]");
        if (StrayDmaFraction > 0 && BufferPolicy != "map-per-packet") errors.Add($"{path}:strayDmaFraction = {S(StrayDmaFraction)}: needs bufferPolicy = map-per-packet");
        if (IovaBatch is < 1 or > 256 || (IovaBatch & (IovaBatch - 1)) != 0) errors.Add($"{path}:iovaBatch = {IovaBatch}: must be a power of two in [1, 256]");
        else if (IovaBatch > 1)
        {
            if (!rx) errors.Add($"{path}:iovaBatch = {IovaBatch}: batched IOVAs are for the receive ring (type nic-rx)");
            else if (BufferPolicy != "map-per-packet") errors.Add($"{path}:iovaBatch = {IovaBatch}: needs bufferPolicy = map-per-packet");
            else if (IovaBatch > RingSize / 2) errors.Add($"{path}:iovaBatch = {IovaBatch}: must be at most ringSize / 2 ({RingSize / 2})");
        }
        if (!(TxFraction >= 0 && TxFraction <= 1)) errors.Add($"{path}:txFraction = {S(TxFraction)}: must be in [0, 1]");
        else if (TxFraction > 0 && !rx) errors.Add($"{path}:txFraction = {S(TxFraction)}: the transmit stream rides on a receive workload (type nic-rx); use type nic-tx for transmit alone");
        else if (TxFraction > 0 && BufferPolicy != "map-per-packet") errors.Add($"{path}:txFraction = {S(TxFraction)}: needs bufferPolicy = map-per-packet (transmit buffers are mapped through the DMA API)");
        if (TxBytes is < 1 or > 65536) errors.Add($"{path}:txBytes = {TxBytes}: must be in [1, 65536]");
        if (!(DriverNsPerPacket >= 0 && DriverNsPerPacket <= 1e9)) errors.Add($"{path}:driverNsPerPacket = {S(DriverNsPerPacket)}: must be in [0, 1e9]");
    }
}
