using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Pcie;

/// <summary>
/// One memory-request TLP (MWr or MRd), ATS translation request or PRI page-request message of a
/// DMA request, from the device through the link, the root port and the IOMMU to memory. Pooled by
/// its device: no allocation per TLP. It carries the PCIe header fields, the translation outcome the
/// root complex acts on, and (apart) the VT-d unit's per-request state <see cref="Vtd"/>.
/// </summary>
public sealed class Tlp
{
    /// <summary>The device-level request this TLP belongs to.</summary>
    public DmaRequest Request = null!;
    /// <summary>The device that sent it (where completions and credits go back to).</summary>
    public ITlpSource Source = null!;

    // ---- PCIe header (and the PASID TLP prefix) ----
    public ushort RequesterId;
    public uint Pasid;
    public bool HasPasid;
    public ulong Address;
    public int Bytes;
    public bool IsWrite;
    /// <summary>AT = "translated" (ATS): <see cref="Address"/> is already physical.</summary>
    public bool Translated;
    /// <summary>An ATS translation request: the IOMMU translates <see cref="Address"/> and answers with a completion, no memory access.</summary>
    public bool IsTranslationRequest;
    /// <summary>A PRI page request message (posted): recorded by the IOMMU for software.</summary>
    public bool IsPageRequest;
    /// <summary>Page request group index of a page request.</summary>
    public int PageGroupIndex;

    // ---- translation outcome (set by whichever IOMMU translates it) ----
    public ulong PhysicalAddress;
    public bool Faulted;
    public FaultReason FaultReason;
    /// <summary>Table-entry reads of the walk this TLP started (0 for hits and joiners).</summary>
    public int WalkReads;
    public bool IotlbHit;

    /// <summary>The VT-d remapping unit's per-request state (not part of the packet).</summary>
    public readonly VtdRequestState Vtd = new();

    // ---- root port bookkeeping (not part of the packet) ----
    /// <summary>Posted-write ordering at the root port: translated (or faulted) and waiting for earlier writes.</summary>
    internal bool OrderReady;
    /// <summary>Intrusive link of the root port's posted-write order.</summary>
    internal Tlp? NextWrite;
    /// <summary>Intrusive link of the root complex's queue of TLPs held while the IOMMU input queue is full.</summary>
    internal Tlp? NextBlocked;

    public Access Access => IsWrite ? Access.Write : Access.Read;

    internal void ResetTranslation()
    {
        PhysicalAddress = 0;
        Faulted = false;
        FaultReason = default;
        WalkReads = 0;
        IotlbHit = false;
        Translated = false;
        IsTranslationRequest = false;
        IsPageRequest = false;
        NextBlocked = null;
        Vtd.Reset();
    }
}
