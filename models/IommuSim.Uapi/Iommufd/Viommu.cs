namespace IommuSim.Uapi.Iommufd;

/// <summary>viommu types (enum iommu_viommu_type). VTD is this simulator's VT-d vIOMMU type.</summary>
public enum IommuViommuType : uint
{
    DEFAULT = 0,
    ARM_SMMUV3 = 1,
    TEGRA241_CMDQV = 2,
    /// <summary>Not in Linux v6.17 (the VT-d driver has no vIOMMU type there); the simulator's VT-d offers one.</summary>
    INTEL_VTD = 0x100,
}

/// <summary>
/// struct iommufd_viommu: the per-VM slice of a physical IOMMU, wrapping the VM's nest-parent
/// stage 2. Holds that HWPT; vDEVICEs and nested HWPTs allocated on it hold the vIOMMU.
/// </summary>
public sealed class Viommu : IommufdObject
{
    private readonly Dictionary<ulong, Vdevice> _vdevs = [];

    internal Viommu(IommufdContext ictx, IommuViommuType type, HwptPaging hwpt) : base(ictx)
    {
        ViommuType = type;
        Hwpt = hwpt;
    }

    public override IommufdObjectType Type => IommufdObjectType.Viommu;

    public IommuViommuType ViommuType { get; }
    public HwptPaging Hwpt { get; }

    /// <summary>viommu->vdevs: virtual id (e.g. the guest's vRID) → vDEVICE.</summary>
    public IReadOnlyDictionary<ulong, Vdevice> Vdevs => _vdevs;

    internal bool TryAddVdevice(Vdevice v) => _vdevs.TryAdd(v.VirtId, v);
    internal void RemoveVdevice(Vdevice v) => _vdevs.Remove(v.VirtId);

    internal override void Release() => Hwpt.Put();
}
