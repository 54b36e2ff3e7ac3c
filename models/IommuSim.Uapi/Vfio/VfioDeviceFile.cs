using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Vfio;

/// <summary>
/// An open VFIO device: the cdev /dev/vfio/devices/vfioX (bound explicitly with
/// DEVICE_BIND_IOMMUFD) or a device fd from a legacy group (bound and attached to the compat IOAS
/// on open). Tracks what the VFIO core tracks (vdev->iommufd_attached, vdev->pasids) because that
/// decides whether a second attach is an attach or a replace.
/// </summary>
public sealed class VfioDeviceFile
{
    private readonly HashSet<uint> _pasids = [];

    internal VfioDeviceFile(DeviceSpec spec, bool viaGroup)
    {
        Spec = spec;
        ViaGroup = viaGroup;
    }

    public DeviceSpec Spec { get; }

    /// <summary>Opened through a legacy group (no cdev ioctls allowed).</summary>
    public bool ViaGroup { get; }

    public IommufdDevice? Idev { get; private set; }

    public bool RidAttached { get; private set; }

    public IReadOnlyCollection<uint> AttachedPasids => _pasids;

    public bool Closed { get; private set; }

    /// <summary>VFIO_DEVICE_BIND_IOMMUFD: binds the cdev to an iommufd; out_devid.</summary>
    public Errno BindIommufd(IommufdContext ictx, VfioDeviceBindIommufd cmd)
    {
        if (ViaGroup || Closed) return Errno.EINVAL;
        if (cmd.flags != 0) return Errno.EINVAL;
        if (Idev is not null) return Errno.EINVAL;
        Errno rc = ictx.DeviceBind(Spec, out var idev);
        if (rc != Errno.OK) return rc;
        Idev = idev;
        cmd.out_devid = idev.Id;
        return Errno.OK;
    }

    /// <summary>The legacy group open: bind and attach to the compat IOAS (no ids returned).</summary>
    internal Errno OpenInContainer(IommufdContext ictx)
    {
        Errno rc = ictx.DeviceBind(Spec, out var idev);
        if (rc != Errno.OK) return rc;
        uint pt = ictx.CompatIoasGetOrCreate().Id;
        rc = ictx.DeviceAttach(idev, IommufdContext.NoPasid, ref pt);
        if (rc != Errno.OK)
        {
            ictx.DeviceUnbind(idev);
            return rc;
        }
        Idev = idev;
        RidAttached = true;
        return Errno.OK;
    }

    /// <summary>
    /// VFIO_DEVICE_ATTACH_IOMMUFD_PT: attaches the RID (or, with ATTACH_PASID, a PASID) to an IOAS
    /// or HWPT; when already attached it is a replace. pt_id returns the HWPT attached.
    /// </summary>
    public Errno AttachPt(VfioDeviceAttachIommufdPt cmd)
    {
        if (ViaGroup || Idev is null) return Errno.EINVAL;
        if ((cmd.flags & ~VfioConst.VFIO_DEVICE_ATTACH_PASID) != 0) return Errno.EINVAL;
        var ictx = Idev.Context;
        uint pt = cmd.pt_id;
        Errno rc;
        if ((cmd.flags & VfioConst.VFIO_DEVICE_ATTACH_PASID) != 0)
        {
            if (Spec.PasidBits == 0) return Errno.EOPNOTSUPP;
            rc = _pasids.Contains(cmd.pasid) ? ictx.DeviceReplace(Idev, cmd.pasid, ref pt) : ictx.DeviceAttach(Idev, cmd.pasid, ref pt);
            if (rc == Errno.OK) _pasids.Add(cmd.pasid);
        }
        else
        {
            rc = RidAttached ? ictx.DeviceReplace(Idev, IommufdContext.NoPasid, ref pt) : ictx.DeviceAttach(Idev, IommufdContext.NoPasid, ref pt);
            if (rc == Errno.OK) RidAttached = true;
        }
        if (rc == Errno.OK) cmd.pt_id = pt;
        return rc;
    }

    /// <summary>VFIO_DEVICE_DETACH_IOMMUFD_PT: detaching something not attached is not an error.</summary>
    public Errno DetachPt(VfioDeviceDetachIommufdPt cmd)
    {
        if (ViaGroup || Idev is null) return Errno.EINVAL;
        if ((cmd.flags & ~VfioConst.VFIO_DEVICE_DETACH_PASID) != 0) return Errno.EINVAL;
        var ictx = Idev.Context;
        if ((cmd.flags & VfioConst.VFIO_DEVICE_DETACH_PASID) != 0)
        {
            if (_pasids.Remove(cmd.pasid)) ictx.DeviceDetach(Idev, cmd.pasid);
        }
        else if (RidAttached)
        {
            ictx.DeviceDetach(Idev, IommufdContext.NoPasid);
            RidAttached = false;
        }
        return Errno.OK;
    }

    /// <summary>close(): unbinds (which detaches everything).</summary>
    internal void Close()
    {
        if (Closed) return;
        if (Idev is { Destroyed: false } idev) idev.Context.DeviceUnbind(idev);
        Idev = null;
        RidAttached = false;
        _pasids.Clear();
        Closed = true;
    }
}
