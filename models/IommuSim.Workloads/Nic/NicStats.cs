using IommuSim.Engine.Stats;

namespace IommuSim.Workloads.Nic;

/// <summary>Counters of one NIC model (measured phase). Packet counts cover measured packets only;
/// DMA and DMA-API counts cover everything that happened since the measured phase began.</summary>
public sealed class NicStats : IResettable
{
    public long Offered;
    public long Delivered;
    public long DeliveredBytes;
    public long DroppedRingFull;
    public long DroppedFifoFull;
    /// <summary>Packets whose buffer DMA faulted (they complete but deliver nothing).</summary>
    public long Faulted;
    public long DescriptorFetches;
    public long DescriptorsFetched;
    public long BufferDmas;
    public long WriteBacks;
    public long DescriptorsWrittenBack;
    public long DmaFaults;
    public long Maps;
    public long Unmaps;
    /// <summary>Stray DMAs issued to just-unmapped buffers (nic.strayDmaFraction).</summary>
    public long StrayDmas;
    /// <summary>Arrival (RX: on the wire; TX: handed to the driver) to descriptor write-back complete.</summary>
    public readonly LatencyHistogram PacketLatency = new("nic.packet");
    /// <summary>DMA-API map call to its completion.</summary>
    public readonly LatencyHistogram MapLatency = new("nic.map");
    public readonly LatencyHistogram UnmapLatency = new("nic.unmap");

    public long Dropped => DroppedRingFull + DroppedFifoFull;

    public void Reset()
    {
        Offered = Delivered = DeliveredBytes = DroppedRingFull = DroppedFifoFull = Faulted = 0;
        DescriptorFetches = DescriptorsFetched = BufferDmas = WriteBacks = DescriptorsWrittenBack = DmaFaults = Maps = Unmaps = StrayDmas = 0;
        PacketLatency.Reset();
        MapLatency.Reset();
        UnmapLatency.Reset();
    }
}
