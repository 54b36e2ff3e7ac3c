using IommuSim.Uapi.Driver;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_hw_pagetable: an object that owns one iommu_domain a device (PASID) can be
/// attached to. Each attached (device, PASID) holds a reference; so does an HWPT_NESTED on its
/// parent. A FAULT object given at allocation is held for the HWPT's lifetime.
/// </summary>
public abstract class HwptBase : IommufdObject
{
    protected HwptBase(IommufdContext ictx, FaultQueue? fault, bool pasidCompat) : base(ictx)
    {
        Fault = fault;
        PasidCompat = pasidCompat;
    }

    public abstract IommuDomain Domain { get; }

    /// <summary>hwpt->fault: where I/O page faults on this domain are delivered, if anywhere.</summary>
    public FaultQueue? Fault { get; internal set; }

    /// <summary>hwpt->pasid_compat: allocated with IOMMU_HWPT_ALLOC_PASID.</summary>
    public bool PasidCompat { get; }

    /// <summary>The paging HWPT whose IOAS supplies reserved regions (itself, or a nested HWPT's parent).</summary>
    public abstract HwptPaging PagingParent { get; }
}
