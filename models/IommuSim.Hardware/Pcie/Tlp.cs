using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Pcie;

/// <summary>
/// One memory-request TLP (MWr or MRd) of a DMA request, from the device through the link, the
/// root complex and the IOMMU to memory. Pooled by its device: no allocation per TLP.
/// It also carries the translation state the IOMMU fills in.
/// </summary>
public sealed class Tlp
{
    public DmaRequest Request = null!;
    /// <summary>The device that sent it (where completions and credits go back to).</summary>
    public ITlpSource Source = null!;
    public ushort RequesterId;
    public uint Pasid;
    public bool HasPasid;
    public ulong Address;
    public int Bytes;
    public bool IsWrite;
    /// <summary>ATS "translated" request: <see cref="Address"/> is already physical.</summary>
    public bool Translated;
    /// <summary>An ATS translation request: the IOMMU translates <see cref="Address"/> and answers with a completion, no memory access.</summary>
    public bool IsTranslationRequest;
    /// <summary>A PRI page request message (posted): recorded by the IOMMU for software.</summary>
    public bool IsPageRequest;
    /// <summary>Page request group index of a page request.</summary>
    public int PageGroupIndex;

    // Filled by the IOMMU.
    public long IommuArrivalPs;
    public ulong PhysicalAddress;
    public bool Faulted;
    public FaultReason FaultReason;
    public int WalkReads;
    public bool IotlbHit;
    /// <summary>The PASID-table entry that governs this request (from the PASID cache or a fetch).</summary>
    public PasidTableEntry Context;
    /// <summary>The PASID actually used (the request's, or the context's RID_PASID).</summary>
    public uint EffectivePasid;

    /// <summary>Posted-write ordering at the root port: translated (or faulted) and waiting for earlier writes.</summary>
    public bool OrderReady;
    /// <summary>Intrusive link of <see cref="PostedWriteOrder"/>.</summary>
    public Tlp? NextWrite;

    /// <summary>Intrusive link for the IOMMU's wait lists (walk waiters, blocked queue).</summary>
    public Tlp? Next;

    public Access Access => IsWrite ? Access.Write : Access.Read;

    internal void ResetTranslation()
    {
        IommuArrivalPs = 0;
        PhysicalAddress = 0;
        Faulted = false;
        FaultReason = default;
        WalkReads = 0;
        IotlbHit = false;
        Translated = false;
        IsTranslationRequest = false;
        IsPageRequest = false;
        Next = null;
    }
}
