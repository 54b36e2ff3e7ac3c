using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// Where a device's run-time mappings go, as each attach path / design does it: the host
/// kernel's DMA-API domain, a VFIO program's IOAS, a guest's own stage-1 table (nested), or a
/// guest table shadowed by the VMM. Supplies the table edits, the invalidation descriptors that
/// make an unmap visible, and the software overheads (ioctls, VM exits) around them.
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

    void Map(ulong iova, ulong output, ulong bytes, Access access);
    void Unmap(ulong iova, ulong bytes);

    /// <summary>Descriptors that invalidate [iova, iova+bytes) (IOTLB and, with ATS, the device TLB).</summary>
    void AddRangeInvalidation(List<InvalidationDescriptor> into, ulong iova, ulong bytes);

    /// <summary>Descriptors that invalidate everything of this domain (a lazy flush).</summary>
    void AddDomainInvalidation(List<InvalidationDescriptor> into);
}
