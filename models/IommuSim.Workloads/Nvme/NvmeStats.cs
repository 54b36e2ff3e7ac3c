using IommuSim.Engine.Stats;

namespace IommuSim.Workloads.Nvme;

/// <summary>Counters of one NVMe model (measured phase). Command counts cover measured commands;
/// DMA and DMA-API counts cover everything since the measured phase began.</summary>
public sealed class NvmeStats : IResettable
{
    public long Submitted;
    public long Completed;
    public long Reads;
    public long Writes;
    public long Bytes;
    /// <summary>Commands one of whose DMAs faulted.</summary>
    public long Faulted;
    public long SqEntryFetches;
    public long PrpListFetches;
    public long PrpListBytes;
    public long DataDmas;
    public long CqEntryWrites;
    public long DmaFaults;
    public long Maps;
    public long Unmaps;
    /// <summary>Submission (SQ entry written, doorbell rung) to CQ entry written.</summary>
    public readonly LatencyHistogram CommandLatency = new("nvme.command");
    public readonly LatencyHistogram ReadLatency = new("nvme.read");
    public readonly LatencyHistogram WriteLatency = new("nvme.write");
    public readonly LatencyHistogram MapLatency = new("nvme.map");
    public readonly LatencyHistogram UnmapLatency = new("nvme.unmap");

    public void Reset()
    {
        Submitted = Completed = Reads = Writes = Bytes = Faulted = 0;
        SqEntryFetches = PrpListFetches = PrpListBytes = DataDmas = CqEntryWrites = DmaFaults = Maps = Unmaps = 0;
        CommandLatency.Reset();
        ReadLatency.Reset();
        WriteLatency.Reset();
        MapLatency.Reset();
        UnmapLatency.Reset();
    }
}
