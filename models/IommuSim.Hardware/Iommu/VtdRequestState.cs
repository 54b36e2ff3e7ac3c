using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Iommu;

/// <summary>
/// What the VT-d remapping unit keeps about one request while translating it (VT-d spec §3.4.3,
/// scalable-mode address translation): when it entered the input queue, the PASID-table entry that
/// governs it and the PASID it is translated under. Kept apart from the PCIe header (<see cref="Tlp"/>),
/// as <see cref="Smmu.SmmuTransaction"/> is for the SMMU; one per pooled TLP, so no allocation per request.
/// </summary>
public sealed class VtdRequestState
{
    /// <summary>When the request entered the input queue (translation latency is measured from here).</summary>
    public long ArrivalPs;
    /// <summary>The PASID-table entry that governs this request (from the PASID cache or a fetch).</summary>
    public PasidTableEntry Context;
    /// <summary>The PASID actually used: the request's, or the context entry's RID_PASID (§9.4).</summary>
    public uint EffectivePasid;
    /// <summary>Context entry of a request whose PASID-table entry is being fetched.</summary>
    public ContextEntry ContextEntry;
    /// <summary>Address of the next entry a context or PASID fetch reads.</summary>
    internal ulong FetchAddress;
    /// <summary>Intrusive link of the wait lists (context/PASID fetch waiters, walk waiters, queued misses).</summary>
    internal Tlp? Next;

    internal void Reset()
    {
        ArrivalPs = 0;
        Next = null;
    }
}
