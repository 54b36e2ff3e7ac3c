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

    public override IommufdObjectType Type => IommufdObjectType.HwptNested;
    public override IommuDomain Domain => NestedDomain;
    public override HwptPaging PagingParent => Parent;

    public HwptPaging Parent { get; }
    public Viommu? Viommu { get; }
    public IommuNestedDomain NestedDomain { get; }

    internal override void Release()
    {
        if (Viommu is not null) Viommu.Put(); else Parent.Put();
        Fault?.Put();
        Context.Kernel.Driver.FreeDomain(NestedDomain);
    }
}
