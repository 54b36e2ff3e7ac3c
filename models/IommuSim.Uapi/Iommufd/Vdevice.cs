namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_vdevice: a device as seen through a vIOMMU, with its virtual id. Holds the
/// vIOMMU and pins the device (one vDEVICE per device).
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

    internal override void Release()
    {
        Viommu.RemoveVdevice(this);
        Viommu.Put();
        Device.Vdevice = null;
        Device.Put();
    }
}
