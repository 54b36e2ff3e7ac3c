using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver.ArmSmmuV3;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The host DMA API in its own arm-smmu-v3 domain (a stage-1 domain with an ASID, as iommu_dma's default domain
/// is): iommu_map → arm_smmu_map_pages writes leaves and sends nothing (the SMMU caches no invalid entry);
/// iommu_unmap → arm_smmu_unmap_pages + iotlb_sync (arm_smmu_tlb_inv_range_domain: TLBI_NH_VA for the range,
/// ATC_INV for ATS masters), gathered for the caller, who adds the CMD_SYNC and waits in simulated time.
/// A lazy flush is arm_smmu_tlb_inv_context (TLBI_NH_ASID, or TLBI_S12_VMALL for a stage-2 domain).
/// 4 KiB leaves, as for VT-d: the buffers are mapped one page at a time.
/// </summary>
internal sealed class SmmuKernelDomainTarget(ArmSmmuDomain domain, MappingWindow window) : WindowedTarget(window)
{
    private readonly DomainFlusher _flusher = DomainFlusher.For(domain, null);

    public ArmSmmuDomain Domain => domain;
    public override ushort DomainId => domain.DomainId;
    public override IotlbGather CreateGather() => _flusher.CreateGather();

    public override void Map(ulong iova, ulong output, ulong bytes, Access access, IotlbGather flush)
    {
        _flusher.Begin(flush, NoFreed);
        try { domain.Map(iova, output, bytes, access, allowLargePages: false); }
        finally { _flusher.End(); }
    }

    public override void Unmap(ulong iova, ulong bytes, IotlbGather? flush, List<ulong> freedTablePages)
    {
        ulong removed;
        _flusher.Begin(flush, freedTablePages);
        try { removed = domain.Unmap(iova, bytes); }
        finally { _flusher.End(); }
        // A traced range mapped before tracing: the traced kernel's iotlb_sync still invalidated it.
        if (removed == 0 && flush is not null) _flusher.AddRange(flush, iova, bytes, leafOnly: true);
    }

    public override void AddDomainInvalidation(IotlbGather into) => _flusher.AddAll(into);

    public override void PutTablePages(List<ulong> pages) => _flusher.PutTablePages(pages);
}
