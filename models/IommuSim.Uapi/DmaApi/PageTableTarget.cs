using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// A mapping target over one page table: a host second-stage domain (kernel DMA API, VFIO IOAS,
/// or a VMM's shadow table) invalidated with IOTLB descriptors tagged by its DID, or a guest's
/// first-stage table (nested) invalidated with PASID-based IOTLB descriptors after a trap.
/// With ATS the device TLB is invalidated too.
/// </summary>
public sealed class PageTableTarget(
    PageTable table,
    ushort domainId,
    uint pasid,
    ushort requesterId,
    bool ats,
    ulong bufferBase,
    ulong bufferBytes,
    ulong iovaBase,
    ulong iovaBytes,
    long mapOverheadPs = 0,
    long unmapOverheadPs = 0,
    long invalidateOverheadPs = 0,
    bool leafOnlyInvalidation = false,
    bool kernelInvalidationHint = false) : IMappingTarget
{
    // Unmapped ranges whose unmap freed a page-table page, until their invalidation is built (kernel hint).
    private readonly HashSet<ulong> _freedTables = [];

    public PageTable Table { get; } = table;
    public bool IdentityMapped => false;
    public ushort DomainId { get; } = domainId;
    public ulong BufferBase { get; } = bufferBase;
    public ulong BufferBytes { get; } = bufferBytes;
    public ulong IovaBase { get; } = iovaBase;
    public ulong IovaBytes { get; } = iovaBytes;
    public long MapOverheadPs { get; } = mapOverheadPs;
    public long UnmapOverheadPs { get; } = unmapOverheadPs;
    public long InvalidateOverheadPs { get; } = invalidateOverheadPs;

    private bool FirstStage => Table.Stage == TableStage.First;

    public void Map(ulong iova, ulong output, ulong bytes, Access access) => Table.Map(iova, output, bytes, access, PageSize.Size4K);

    public void Unmap(ulong iova, ulong bytes)
    {
        long pages = Table.TablePages;
        Table.Unmap(iova, bytes);
        if (kernelInvalidationHint && Table.TablePages < pages) _freedTables.Add(iova);
    }

    public void AddRangeInvalidation(List<InvalidationDescriptor> into, ulong iova, ulong bytes)
    {
        var (addr, am) = InvalidationDescriptor.CoveringMask(iova, bytes);
        // IH (leaf only): the paging-structure caches are kept. Linux sets it when the unmap freed no
        // page-table page (intel_iommu_tlb_sync: ih = list_empty(&gather->freelist)): kernelInvalidationHint.
        // leafOnlyInvalidation forces it (the leaf-only mode of Rubin et al., SOSP'24).
        bool ih = leafOnlyInvalidation || (kernelInvalidationHint && !_freedTables.Remove(iova));
        into.Add(FirstStage
            ? InvalidationDescriptor.PasidIotlbPages(DomainId, pasid, addr, am, ih)
            : InvalidationDescriptor.IotlbPages(DomainId, addr, am, ih));
        if (ats)
            into.Add(FirstStage
                ? new InvalidationDescriptor(InvalidationType.PasidDeviceTlb, InvalidationGranularity.Page, Pasid: pasid, RequesterId: requesterId, Address: addr, AddressMask: am)
                : InvalidationDescriptor.DeviceTlb(requesterId, addr, am));
    }

    public void AddDomainInvalidation(List<InvalidationDescriptor> into)
    {
        into.Add(FirstStage ? InvalidationDescriptor.PasidIotlbAll(DomainId, pasid) : InvalidationDescriptor.IotlbDomain(DomainId));
        if (ats) into.Add(InvalidationDescriptor.DeviceTlbAll(requesterId));
    }
}
