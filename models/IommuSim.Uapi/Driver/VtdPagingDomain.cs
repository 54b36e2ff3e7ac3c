using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.Driver;

/// <summary>
/// A second-stage paging domain: a host VT-d second-stage table (IOVA or GPA → HPA) in host
/// memory. Backs an iommufd HWPT_PAGING (and the host kernel's DMA-API domain). A NEST_PARENT
/// domain is the stage 2 of nested domains, which are flushed with it.
/// </summary>
public sealed class VtdPagingDomain : IommuPagingDomain
{
    private readonly VtdDriver _driver;

    internal VtdPagingDomain(VtdDriver driver, ushort did, PageTable table, PageSize maxPageSize, bool nestParent, bool dirtyCapable)
        : base(did, nestParent, dirtyCapable)
    {
        _driver = driver;
        Table = table;
        MaxPageSize = maxPageSize;
    }

    public PageTable Table { get; }

    /// <summary>Largest leaf this domain uses when alignment allows.</summary>
    public PageSize MaxPageSize { get; }

    /// <summary>Last IOVA of the aperture: 2^48−1 for a 4-level table.</summary>
    public override ulong ApertureLast => Table.MaxAddress;

    /// <summary>domain->pgsize_bitmap: 4K always, then the huge sizes the table can hold.</summary>
    public override ulong PgsizeBitmap => 0x1000UL
        | (MaxPageSize >= PageSize.Size2M ? 0x20_0000UL : 0)
        | (MaxPageSize >= PageSize.Size1G && Table.Levels > 3 ? 0x4000_0000UL : 0);

    /// <summary>
    /// iommu_map(): writes leaves for [iova, iova+length) → pa. No invalidation is needed (VT-d without
    /// caching mode never caches not-present entries) unless a large leaf replaced an emptied lower table,
    /// which the paging-structure caches may still point to: then the range is flushed, as
    /// __domain_mapping does after dma_pte_free_pagetable.
    /// </summary>
    public override void Map(ulong iova, ulong pa, ulong length, Access prot, bool allowLargePages)
    {
        long freed = Table.TablesFreedByMap;
        Table.Map(iova, pa, length, prot, allowLargePages ? MaxPageSize : PageSize.Size4K);
        if (Table.TablesFreedByMap != freed) _driver.FlushRange(this, iova, length);
    }

    /// <summary>
    /// iommu_unmap() followed by iotlb_sync: clears the leaves, then flushes the IOTLB (and device
    /// TLBs, and the combined entries of nested children) and waits, so that no DMA can use the
    /// old translation once this returns. Returns the bytes that were mapped.
    /// </summary>
    public override ulong Unmap(ulong iova, ulong length)
    {
        ulong removed = Table.Unmap(iova, length);
        if (removed > 0) _driver.FlushRange(this, iova, length);
        return removed;
    }

    /// <summary>Clears second-stage D bits (before SLADE is set, so tracking starts clean).</summary>
    public override void ClearDirty(ulong iova, ulong length) => Table.ClearDirty(iova, length);
}
