using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Driver;

/// <summary>
/// What the iommufd objects and the kernel's DMA layer call on an IOMMU driver, shaped like
/// struct iommu_ops (domain_alloc_paging_flags, identity_domain, blocked_domain, page_response)
/// and the domain ops a driver gives its domains (attach_dev / set_dev_pasid, free, dirty_ops).
/// Implemented by <see cref="VtdDriver"/> (drivers/iommu/intel) and
/// <see cref="ArmSmmuV3.ArmSmmuV3Driver"/> (drivers/iommu/arm/arm-smmu-v3); <see cref="IommuKernel"/>
/// picks one by the platform's architecture.
/// </summary>
public interface IIommuDriver
{
    /// <summary><c>vtd</c> or <c>smmuv3</c>.</summary>
    string Architecture { get; }

    PlatformSpec Spec { get; }

    /// <summary>ops->identity_domain.</summary>
    IommuDomain Identity { get; }

    /// <summary>ops->domain_alloc_paging_flags (NEST_PARENT, DIRTY_TRACKING); <paramref name="levels"/> and
    /// <paramref name="maxPageSize"/> are the table geometry a config asks for (null: the driver's default).</summary>
    IommuPagingDomain AllocPagingDomain(bool nestParent, bool dirtyTracking, int? levels = null, PageSize? maxPageSize = null);

    /// <summary>domain->ops->free, after every attachment is gone: the domain's tag is flushed and can be reused.</summary>
    void FreeDomain(IommuDomain domain);

    /// <summary>
    /// attach_dev / set_dev_pasid / replace: points (device, PASID) at <paramref name="domain"/> (null:
    /// blocked), replacing <paramref name="old"/>, flushing what the old one may have cached. An errno
    /// refuses the attach and changes nothing.
    /// </summary>
    Errno SetDevicePasid(DeviceSpec dev, uint pasid, IommuDomain? domain, IommuDomain? old);

    /// <summary>dirty_ops->set_dirty_tracking.</summary>
    void SetDirtyTracking(IommuPagingDomain domain, bool enable);

    /// <summary>dirty_ops->read_and_clear_dirty over the mapped spans.</summary>
    void ReadAndClearDirty(IommuPagingDomain domain, IReadOnlyList<(ulong Iova, ulong Last)> spans, bool noClear, Action<ulong, ulong> setDirty);

    /// <summary>ops->page_response: answers a page-request group (posted, not waited for).</summary>
    void PageResponse(DeviceSpec dev, uint pasid, int groupIndex, PageResponseCode code);

    /// <summary>Invalidation batches sent, each ending in a wait (VT-d wait descriptor, SMMU CMD_SYNC).</summary>
    long FlushCount { get; }

    /// <summary>Invalidation descriptors / commands sent, waits excluded.</summary>
    long DescriptorCount { get; }
}
