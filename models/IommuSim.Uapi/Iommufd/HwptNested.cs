using IommuSim.Uapi.Driver;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_hwpt_nested: a user-managed stage-1 table (VT-d: pgtbl_addr in guest memory)
/// over the stage 2 of a NEST_PARENT HWPT_PAGING, reached directly or through a vIOMMU. Holds
/// its parent (or vIOMMU) for its lifetime.
/// </summary>
public sealed class HwptNested : HwptBase
{
    internal HwptNested(IommufdContext ictx, HwptPaging parent, Viommu? viommu, VtdNestedDomain domain, FaultQueue? fault, bool pasidCompat)
        : base(ictx, fault, pasidCompat)
    {
        Parent = parent;
        Viommu = viommu;
        NestedDomain = domain;
    }

    /// <summary>A nested HWPT a vIOMMU driver made (iommufd_viommu_alloc_hwpt_nested): its domain is the driver's.</summary>
    internal HwptNested(IommufdContext ictx, Viommu viommu, object viommuDomain, FaultQueue? fault, bool pasidCompat)
        : base(ictx, fault, pasidCompat)
    {
        Parent = viommu.Hwpt;
        Viommu = viommu;
        ViommuDomain = viommuDomain;
    }

    public override IommufdObjectType Type => IommufdObjectType.HwptNested;
    /// <summary>The VT-d domain; a vIOMMU driver's HWPT never reaches the VT-d driver (attach refuses it: EINVAL).</summary>
    public override VtdDomain Domain => NestedDomain!;
    public override HwptPaging PagingParent => Parent;

    public HwptPaging Parent { get; }
    public Viommu? Viommu { get; }
    /// <summary>The VT-d nested domain (HWPT_ALLOC on a nest parent with VTD_S1 data); null for a vIOMMU driver's domain.</summary>
    public VtdNestedDomain? NestedDomain { get; }

    /// <summary>The vIOMMU driver's nested domain (SMMUv3: struct arm_smmu_nested_domain, the guest STE); null for VT-d.</summary>
    public object? ViommuDomain { get; }

    internal override void Release()
    {
        if (Viommu is not null) Viommu.Put(); else Parent.Put();
        Fault?.Put();
        if (NestedDomain is not null) Context.Kernel.Driver.FreeDomain(NestedDomain);
    }
}
