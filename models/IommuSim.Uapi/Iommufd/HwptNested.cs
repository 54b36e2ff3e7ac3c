using IommuSim.Uapi.Driver;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_hwpt_nested: a user-managed stage-1 table (VT-d: pgtbl_addr in guest memory)
/// over the stage 2 of a NEST_PARENT HWPT_PAGING, reached directly or through a vIOMMU. Holds
/// its parent (or vIOMMU) for its lifetime.
/// </summary>
public sealed class HwptNested : HwptBase
{
    internal HwptNested(IommufdContext ictx, HwptPaging parent, Viommu? viommu, IommuNestedDomain domain, FaultQueue? fault, bool pasidCompat)
        : base(ictx, fault, pasidCompat)
    {
        Parent = parent;
        Viommu = viommu;
        NestedDomain = domain;
    }

    /// <summary>A nested HWPT a vIOMMU driver made (iommufd_viommu_alloc_hwpt_nested): its domain is the driver's.</summary>
    internal HwptNested(IommufdContext ictx, Viommu viommu, IommuNestedDomain domain, FaultQueue? fault, bool pasidCompat)
        : this(ictx, viommu.Hwpt, viommu, domain, fault, pasidCompat) { }

    public override IommufdObjectType Type => IommufdObjectType.HwptNested;
    public override IommuDomain Domain => NestedDomain;
    public override HwptPaging PagingParent => Parent;

    public HwptPaging Parent { get; }
    public Viommu? Viommu { get; }
    /// <summary>The nested domain: VT-d's (HWPT_ALLOC on a nest parent with VTD_S1 data) or a vIOMMU driver's (SMMUv3:
    /// struct arm_smmu_nested_domain with the guest STE).</summary>
    public IommuNestedDomain NestedDomain { get; }

    internal override void Release()
    {
        if (Viommu is not null) Viommu.Put(); else Parent.Put();
        Fault?.Put();
        Context.Kernel.Driver.FreeDomain(NestedDomain);
    }
}
