using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_device: a device bound to this context (VFIO DEVICE_BIND_IOMMUFD or the legacy
/// group open). The binding driver holds a reference until unbind, so IOMMU_DESTROY on a device
/// id is always EBUSY. Its DMA ownership covers its whole group.
/// </summary>
public sealed class IommufdDevice : IommufdObject
{
    internal IommufdDevice(IommufdContext ictx, DeviceSpec spec, IommufdGroup group) : base(ictx)
    {
        Spec = spec;
        Group = group;
    }

    public override IommufdObjectType Type => IommufdObjectType.Device;

    public DeviceSpec Spec { get; }
    public IommufdGroup Group { get; }

    /// <summary>The vDEVICE representing this device in a vIOMMU, if any (it pins the device).</summary>
    public Vdevice? Vdevice { get; internal set; }

    /// <summary>Whether the device supports PASIDs at all, and this one in particular.</summary>
    public bool PasidValid(uint pasid) => pasid == IommufdContext.NoPasid || (Spec.PasidBits > 0 && pasid < (1u << Math.Min(Spec.PasidBits, 20)));

    internal override void Release() { }
}
