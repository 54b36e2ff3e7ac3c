using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// Where a device's run-time mappings go, as each attach path / design does it (built by
/// <see cref="MappingTargets"/>): the host kernel's DMA-API domain, a VFIO program's IOAS (IOAS_MAP /
/// VFIO_IOMMU_MAP_DMA), a guest's own stage-1 table with trapped invalidations forwarded by
/// HWPT_INVALIDATE (nested), or a guest table shadowed by the VMM's IOAS_MAP/UNMAP. Every edit goes
/// through the kernel's domain and iommufd objects; the invalidations come from the driver, gathered in the
/// target's own <see cref="IotlbGather"/> (VT-d descriptors or SMMUv3 commands: the caller never sees the
/// format). The caller submits the gather and waits in simulated time (iommu_iotlb_sync).
/// </summary>
public interface IMappingTarget
{
    /// <summary>No translation: the IOVA of a buffer is its output address.</summary>
    bool IdentityMapped { get; }

    /// <summary>Domain id the mappings are cached under (for stale-translation bookkeeping).</summary>
    ushort DomainId { get; }

    /// <summary>Output-address range that buffers are taken from (host-physical, or guest-physical for nested).</summary>
    ulong BufferBase { get; }
    ulong BufferBytes { get; }

    /// <summary>IOVA window the allocator hands out.</summary>
    ulong IovaBase { get; }
    ulong IovaBytes { get; }

    /// <summary>Software cost beyond the page-table work: an ioctl, or a VM exit to the VMM.</summary>
    long MapOverheadPs { get; }
    long UnmapOverheadPs { get; }
    /// <summary>Cost of getting an invalidation to the host (a trapped guest invalidation is a VM exit).</summary>
    long InvalidateOverheadPs { get; }

    /// <summary>A new, empty gather for this target's IOMMU (one per driver CPU and purpose, reused).</summary>
    IotlbGather CreateGather();

    /// <summary>
    /// Maps [iova, iova+bytes) → output. Invalidations a map needs (rare: a large leaf replacing a table)
    /// are appended to <paramref name="flush"/>. <see cref="InvalidOperationException"/> when the range is
    /// already mapped.
    /// </summary>
    void Map(ulong iova, ulong output, ulong bytes, Access access, IotlbGather flush);

    /// <summary>
    /// Removes [iova, iova+bytes) and gathers into <paramref name="flush"/> the invalidations that make the
    /// unmap visible (IOTLB, device TLBs). Null: a lazy unmap, whose flush comes later for the whole
    /// domain (<see cref="AddDomainInvalidation"/>). Host page-table pages the unmap took out are appended
    /// to <paramref name="freedTablePages"/>: the caches may still point at them, so the caller gives them
    /// back (<see cref="PutTablePages"/>) only once the flush has completed.
    /// </summary>
    void Unmap(ulong iova, ulong bytes, IotlbGather? flush, List<ulong> freedTablePages);

    /// <summary>iommu_put_pages_list: frees table pages an unmap kept until its flush completed (and clears the list).</summary>
    void PutTablePages(List<ulong> pages);

    /// <summary>Gathers what invalidates everything of this domain (a lazy flush: VT-d DSI, SMMUv3 TLBI_NH_ASID / TLBI_S12_VMALL).</summary>
    void AddDomainInvalidation(IotlbGather into);
}
