namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_vdevice: a device as seen through a vIOMMU, with its virtual id (the guest's vSID on
/// SMMUv3). Holds the vIOMMU and pins the device (one vDEVICE per device).
/// </summary>
public sealed class Vdevice : IommufdObject
{
    internal Vdevice(IommufdContext ictx, Viommu viommu, IommufdDevice dev, ulong virtId) : base(ictx)
    {
        Viommu = viommu;
        Device = dev;
        VirtId = virtId;
    }

    public override IommufdObjectType Type => IommufdObjectType.Vdevice;

    public Viommu Viommu { get; }
    public IommufdDevice Device { get; }
    public ulong VirtId { get; }

    /// <summary>Whether the driver's vdevice_init ran (so its vdev->destroy must run on release).</summary>
    internal bool DriverInitialized { get; set; }

    /// <summary>The driver's per-vDEVICE state (Tegra241: the SID_REPLACE/SID_MATCH slot).</summary>
    public object? DriverData { get; set; }

    /// <summary>iommufd_vdevice_abort + destroy: the driver's destroy, out of the vIOMMU's table, references dropped.</summary>
    internal override void Release()
    {
        if (DriverInitialized) Viommu.Ops?.VdeviceDestroy(this);
        Viommu.RemoveVdevice(this);
        Viommu.Put();
        Device.Vdevice = null;
        Device.Put();
    }
}
