using IommuSim.Hardware.Iommu.Faults;

namespace IommuSim.Hardware.Pcie;

/// <summary>A device-level DMA request (one trace line / workload operation), split into TLPs.</summary>
public sealed class DmaRequest
{
    public ulong Iova;
    public int Bytes;
    public bool IsWrite;
    public uint Pasid;
    public bool HasPasid;
    public long IssuePs;
    public long CompletePs;
    /// <summary>Bytes not yet sent as TLPs.</summary>
    public int BytesToSend;
    /// <summary>TLPs (or read completions) not yet finished.</summary>
    public int TlpsOutstanding;
    public bool Faulted;
    public FaultReason FaultReason;
    public ulong FirstPhysicalAddress;
    public int WalkReads;
    /// <summary>Free for the issuer (workload) to tag the request with.</summary>
    public long Tag;
    /// <summary>Whether this request counts in the measured phase (issued after warm-up).</summary>
    public bool Measured;
    /// <summary>Who gets the completion (several workloads may drive one device); null: the device's client.</summary>
    public Devices.IDmaClient? Owner;

    public long LatencyPs => CompletePs - IssuePs;
}
