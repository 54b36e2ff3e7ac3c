using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Vfio;

/// <summary>
/// The VFIO ioctls a process issues on its fds: the container ioctls on /dev/vfio/vfio served by iommufd
/// (<c>iommufd_vfio_ioctl</c>, drivers/iommu/iommufd/vfio_compat.c) and the device cdev ioctls
/// (<c>vfio_device_fops_unl_ioctl</c>, drivers/vfio/device_cdev.c). The fd lookup is here (EBADF for an fd
/// that is not a container); each ioctl's own checks are in the object behind the fd. The group ioctls are
/// <see cref="UserProcess"/>'s (GroupGetStatus, GroupSetContainer, …).
/// </summary>
public static class VfioIoctls
{
    /// <summary>
    /// The script language's name for type1 dirty-page tracking (<c>DIRTY_PAGES</c>, 0x10000): not a VFIO
    /// extension number, so <c>VFIO_CHECK_EXTENSION</c> answers 0 for it as for any number it does not know
    /// (iommufd_vfio_check_extension's default); the separate VFIO_IOMMU_DIRTY_PAGES ioctl is what iommufd's
    /// compat layer refuses.
    /// </summary>
    public const uint DirtyPagesExtension = 0x10000;

    private static Errno Container(UserProcess p, int fd, out IommufdContext ictx)
    {
        ictx = p.Iommufd(fd)!;
        return ictx is null ? Errno.EBADF : Errno.OK;
    }

    /// <summary>VFIO_GET_API_VERSION (iommufd_vfio_ioctl): VFIO_API_VERSION.</summary>
    public static Errno VfioGetApiVersion(this UserProcess p, int container, out int version)
    {
        version = 0;
        Errno rc = Container(p, container, out _);
        if (rc == Errno.OK) version = IommufdContext.VfioGetApiVersion();
        return rc;
    }

    /// <summary>VFIO_CHECK_EXTENSION (iommufd_vfio_check_extension): the extension's value, or an errno.</summary>
    public static Errno VfioCheckExtension(this UserProcess p, int container, ulong extension, out int value)
    {
        value = 0;
        if (Container(p, container, out var c) is var rc && rc != Errno.OK) return rc;
        int v = c.VfioCheckExtension((uint)extension);
        if (v < 0) return (Errno)(-v);
        value = v;
        return Errno.OK;
    }

    /// <summary>VFIO_SET_IOMMU (iommufd_vfio_set_iommu).</summary>
    public static Errno VfioSetIommu(this UserProcess p, int container, ulong type)
        => Container(p, container, out var c) is var rc && rc != Errno.OK ? rc : c.VfioSetIommu((uint)type);

    /// <summary>VFIO_IOMMU_GET_INFO (iommufd_vfio_iommu_get_info).</summary>
    public static Errno VfioIommuGetInfo(this UserProcess p, int container, VfioIommuType1Info info)
        => Container(p, container, out var c) is var rc && rc != Errno.OK ? rc : c.VfioIommuGetInfo(info);

    /// <summary>VFIO_IOMMU_MAP_DMA (iommufd_vfio_map_dma).</summary>
    public static Errno VfioIommuMapDma(this UserProcess p, int container, VfioIommuType1DmaMap map)
        => Container(p, container, out var c) is var rc && rc != Errno.OK ? rc : c.VfioMapDma(map);

    /// <summary>VFIO_IOMMU_UNMAP_DMA (iommufd_vfio_unmap_dma); out: the bytes unmapped in <c>size</c>.</summary>
    public static Errno VfioIommuUnmapDma(this UserProcess p, int container, VfioIommuType1DmaUnmap unmap)
        => Container(p, container, out var c) is var rc && rc != Errno.OK ? rc : c.VfioUnmapDma(unmap);

    /// <summary>
    /// open("/dev/vfio/devices/vfioX") then VFIO_DEVICE_BIND_IOMMUFD (vfio_df_ioctl_bind_iommufd) to
    /// <paramref name="ictx"/>, the iommufd behind <c>cmd.iommufd</c> (iommufd_ctx_from_fd): ENODEV without a device,
    /// EBADF without an iommufd; a failed bind closes the new fd again. Out: <c>cmd.out_devid</c> and the device fd.
    /// </summary>
    public static Errno VfioDeviceBindIommufd(this UserProcess p, DeviceSpec? device, IommufdContext? ictx, VfioDeviceBindIommufd cmd, out int fd)
    {
        fd = -1;
        if (device is null) return Errno.ENODEV;
        if (ictx is null) return Errno.EBADF;
        Errno rc = p.OpenDeviceCdev(device, out int dfd);
        if (rc != Errno.OK) return rc;
        rc = p.DeviceFile(dfd)!.BindIommufd(ictx, cmd);
        if (rc != Errno.OK)
        {
            p.Close(dfd);
            return rc;
        }
        fd = dfd;
        return Errno.OK;
    }

    /// <summary>VFIO_DEVICE_ATTACH_IOMMUFD_PT (vfio_df_ioctl_attach_pt) on the cdev bound as <paramref name="devId"/> in
    /// <paramref name="ictx"/>: ENOENT without one. Out: <c>cmd.pt_id</c> (the HWPT an IOAS attach used).</summary>
    public static Errno VfioDeviceAttachIommufdPt(this UserProcess p, IommufdContext? ictx, uint devId, VfioDeviceAttachIommufdPt cmd)
        => Cdev(p, ictx, devId) is { } f ? f.AttachPt(cmd) : Errno.ENOENT;

    /// <summary>VFIO_DEVICE_DETACH_IOMMUFD_PT (vfio_df_ioctl_detach_pt): ENOENT without a cdev bound as <paramref name="devId"/>.</summary>
    public static Errno VfioDeviceDetachIommufdPt(this UserProcess p, IommufdContext? ictx, uint devId, VfioDeviceDetachIommufdPt cmd)
        => Cdev(p, ictx, devId) is { } f ? f.DetachPt(cmd) : Errno.ENOENT;

    private static VfioDeviceFile? Cdev(UserProcess p, IommufdContext? ictx, uint devId)
        => ictx is null ? null : p.DeviceFileByDevid(ictx, devId);
}
