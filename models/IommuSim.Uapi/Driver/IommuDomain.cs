using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Driver;

/// <summary>The kind of an iommu_domain (include/linux/iommu.h IOMMU_DOMAIN_*).</summary>
public enum IommuDomainType
{
    /// <summary>IOMMU_DOMAIN_BLOCKED: all DMA is refused.</summary>
    Blocked,
    /// <summary>IOMMU_DOMAIN_IDENTITY: DMA addresses are physical addresses (iommu=pt).</summary>
    Identity,
    /// <summary>IOMMU_DOMAIN_UNMANAGED / DMA: a kernel-owned I/O page table.</summary>
    Paging,
    /// <summary>IOMMU_DOMAIN_NESTED: a user-owned stage 1 over a nest-parent paging domain.</summary>
    Nested,
}

/// <summary>
/// struct iommu_domain as the iommufd objects see it, whatever the driver: which (device, PASID)
/// pairs point at it (the entries a driver must rewrite or flush), and the tag its translations
/// are cached under (VT-d: the domain id; SMMUv3: the ASID of a stage-1 domain, the VMID of a
/// stage-2 one). Each driver derives its own domains (struct dmar_domain, struct arm_smmu_domain).
/// </summary>
public abstract class IommuDomain
{
    private readonly List<(DeviceSpec Device, uint Pasid)> _attachments = [];

    protected IommuDomain(ushort domainId) => DomainId = domainId;

    public abstract IommuDomainType Type { get; }

    /// <summary>The hardware cache tag (VT-d DID, SMMU ASID or VMID).</summary>
    public ushort DomainId { get; }

    public IReadOnlyList<(DeviceSpec Device, uint Pasid)> Attachments => _attachments;

    /// <summary>Whether the domain has been freed (its tag may be reused).</summary>
    public bool Freed { get; internal set; }

    internal void AddAttachment(DeviceSpec dev, uint pasid) => _attachments.Add((dev, pasid));

    internal void RemoveAttachment(DeviceSpec dev, uint pasid) => _attachments.Remove((dev, pasid));
}

/// <summary>
/// A paging domain and its iommu_domain_ops: map_pages / unmap_pages (+ iotlb_sync: an unmap is
/// invalidated and waited for before it returns), the aperture and page sizes iopt_table_add_domain
/// checks, and the nested domains built on it when it is a NEST_PARENT.
/// </summary>
public abstract class IommuPagingDomain : IommuDomain
{
    private readonly List<IommuNestedDomain> _children = [];

    protected IommuPagingDomain(ushort domainId, bool nestParent, bool dirtyCapable) : base(domainId)
    {
        NestParent = nestParent;
        DirtyCapable = dirtyCapable;
    }

    public override IommuDomainType Type => IommuDomainType.Paging;

    public bool NestParent { get; }

    /// <summary>Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING (has dirty_ops).</summary>
    public bool DirtyCapable { get; }

    /// <summary>Dirty tracking is on (set_dirty_tracking).</summary>
    public bool DirtyTracking { get; internal set; }

    /// <summary>domain->geometry.aperture_end.</summary>
    public abstract ulong ApertureLast { get; }

    /// <summary>domain->pgsize_bitmap.</summary>
    public abstract ulong PgsizeBitmap { get; }

    public IReadOnlyList<IommuNestedDomain> Children => _children;

    internal void AddChild(IommuNestedDomain d) => _children.Add(d);
    internal void RemoveChild(IommuNestedDomain d) => _children.Remove(d);

    /// <summary>iommu_map(): [iova, iova+length) → pa.</summary>
    public abstract void Map(ulong iova, ulong pa, ulong length, Access prot, bool allowLargePages);

    /// <summary>iommu_unmap() + iotlb_sync: returns the bytes that were mapped; no DMA can use them once this returns.</summary>
    public abstract ulong Unmap(ulong iova, ulong length);

    /// <summary>Clears the dirty state of [iova, iova+length) without reporting it (before tracking starts).</summary>
    public abstract void ClearDirty(ulong iova, ulong length);
}

/// <summary>A nested domain: a user-owned stage 1 over the stage 2 of <see cref="ParentDomain"/>.</summary>
public abstract class IommuNestedDomain(ushort domainId) : IommuDomain(domainId)
{
    public override IommuDomainType Type => IommuDomainType.Nested;

    public abstract IommuPagingDomain ParentDomain { get; }
}
