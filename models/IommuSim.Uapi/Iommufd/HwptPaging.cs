using IommuSim.Uapi.Driver;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_hwpt_paging: a kernel-managed I/O page table mirroring one IOAS. "Auto" ones
/// are made by attaching a device to an IOAS and die with their last attachment; manual ones
/// (HWPT_ALLOC) live until IOMMU_DESTROY and alone may be nest parents.
/// </summary>
public sealed class HwptPaging : HwptBase
{
    internal HwptPaging(IommufdContext ictx, Ioas ioas, IommuPagingDomain domain, bool autoDomain, FaultQueue? fault, bool pasidCompat)
        : base(ictx, fault, pasidCompat)
    {
        Ioas = ioas;
        PagingDomain = domain;
        AutoDomain = autoDomain;
    }

    public override IommufdObjectType Type => IommufdObjectType.HwptPaging;
    public override IommuDomain Domain => PagingDomain;
    public override HwptPaging PagingParent => this;

    public Ioas Ioas { get; }
    public IommuPagingDomain PagingDomain { get; }
    public bool AutoDomain { get; }
    public bool NestParent => PagingDomain.NestParent;

    /// <summary>Whether the domain has been added to the IOAS (mapped and reserving its aperture).</summary>
    internal bool InIoas { get; set; }

    internal override void Release()
    {
        if (InIoas) Ioas.Iopt.RemoveDomain(PagingDomain);
        InIoas = false;
        Ioas.RemoveHwpt(this);
        Ioas.Put();
        Fault?.Put();
        Context.Kernel.Driver.FreeDomain(PagingDomain);
    }
}
