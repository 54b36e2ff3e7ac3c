using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Caches;

namespace IommuSim.Hardware.Smmu;

/// <summary>SMMUv3 event types (SMMUv3 spec §7.3) the model reports.</summary>
public enum SmmuEventType : byte
{
    None = 0,
    BadStreamId = 0x02,
    BadSte = 0x04,
    StreamDisabled = 0x06,
    BadSubstreamId = 0x08,
    BadCd = 0x0a,
    Translation = 0x10,
    AddressSize = 0x11,
    AccessFlag = 0x12,
    Permission = 0x13,
}

/// <summary>
/// One transaction's state inside the SMMU (the IOMMU's per-request state, kept apart from the
/// PCIe header): the StreamID and SubstreamID it arrived with, the address and access, and what
/// translation made of it. Pooled by its owner; waiting transactions form linked lists.
/// </summary>
public sealed class SmmuTransaction
{
    public uint Sid;
    public uint Ssid;
    public bool HasSsid;
    public ulong Address;
    public Access Access;
    /// <summary>The owner's cookie (a request index).</summary>
    public long Tag;
    /// <summary>The PCIe TLP this transaction translates (<see cref="SmmuPcieAdapter"/>).</summary>
    public Pcie.Tlp? Packet;

    // Results.
    public ulong OutputAddress;
    public bool Faulted;
    public SmmuEventType Fault;
    /// <summary>The fault was raised by stage 2 (EVT S2 = 1); <see cref="FaultIpa"/> holds the IPA.</summary>
    public bool FaultInStage2;
    /// <summary>Stage 2 faulted while translating a stage-1 table address (EVT CLASS = TT), not the output (IN).</summary>
    public bool FaultOnTableWalk;
    public ulong FaultIpa;
    public bool TlbHit;
    public bool ConfigFetched;
    /// <summary>Table-entry reads of the walk this transaction started (0 for hits and joiners).</summary>
    public int WalkReads;
    public long ArrivalPs;

    internal SmmuStreamConfig Config;
    internal SmmuTransaction? Next;

    public bool IsWrite => (Access & Access.Write) != 0;

    public void Reset()
    {
        Sid = Ssid = 0;
        HasSsid = false;
        Address = 0;
        Access = Access.None;
        Tag = 0;
        Packet = null;
        ClearResult();
    }

    internal void ClearResult()
    {
        OutputAddress = 0;
        Faulted = FaultInStage2 = FaultOnTableWalk = TlbHit = ConfigFetched = false;
        Fault = SmmuEventType.None;
        FaultIpa = 0;
        WalkReads = 0;
        Config = default;
        Next = null;
    }
}
