using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vfio;

namespace IommuSim.Uapi.Tests.Boundary;

/// <summary>
/// <see cref="VfioIoctls"/>: the VFIO ioctls on a process's fds. Container ioctls are iommufd_vfio_ioctl's
/// (drivers/iommu/iommufd/vfio_compat.c) on the iommufd behind the fd; the cdev ioctls are vfio_device_fops_unl_ioctl's
/// (drivers/vfio/device_cdev.c: vfio_df_ioctl_bind_iommufd, vfio_df_ioctl_attach_pt, vfio_df_ioctl_detach_pt).
/// </summary>
public class VfioIoctlsTests
{
    private const uint RW = VfioConst.VFIO_DMA_MAP_FLAG_READ | VfioConst.VFIO_DMA_MAP_FLAG_WRITE;

    /// <summary>A container ioctl on an fd that is not an open container (fdget fails) is EBADF, whatever the ioctl.</summary>
    [Fact]
    public void Container_ioctls_on_a_non_container_fd_are_EBADF()
    {
        var s = new Sim();
        const int nofd = 99;
        Assert.Equal(Errno.EBADF, s.Process.VfioGetApiVersion(nofd, out _));
        Assert.Equal(Errno.EBADF, s.Process.VfioCheckExtension(nofd, VfioConst.VFIO_TYPE1v2_IOMMU, out _));
        Assert.Equal(Errno.EBADF, s.Process.VfioSetIommu(nofd, VfioConst.VFIO_TYPE1v2_IOMMU));
        Assert.Equal(Errno.EBADF, s.Process.VfioIommuGetInfo(nofd, new VfioIommuType1Info()));
        Assert.Equal(Errno.EBADF, s.Process.VfioIommuMapDma(nofd, new VfioIommuType1DmaMap { flags = RW, size = 0x1000 }));
        Assert.Equal(Errno.EBADF, s.Process.VfioIommuUnmapDma(nofd, new VfioIommuType1DmaUnmap { size = 0x1000 }));
    }

    /// <summary>iommufd_vfio_ioctl: VFIO_GET_API_VERSION is VFIO_API_VERSION; iommufd_vfio_check_extension answers TYPE1v2
    /// with 1; iommufd_vfio_set_iommu needs a group's compat IOAS (ENODEV without one).</summary>
    [Fact]
    public void Container_answers_version_extension_and_needs_an_ioas_for_set_iommu()
    {
        var s = new Sim();
        int container = s.Process.OpenContainer(out _);
        Assert.Equal(Errno.OK, s.Process.VfioGetApiVersion(container, out int version));
        Assert.Equal(VfioConst.VFIO_API_VERSION, version);
        Assert.Equal(Errno.OK, s.Process.VfioCheckExtension(container, VfioConst.VFIO_TYPE1v2_IOMMU, out int v));
        Assert.Equal(1, v);
        Assert.Equal(Errno.ENODEV, s.Process.VfioCheckExtension(container, VfioConst.VFIO_DMA_CC_IOMMU, out _)); // no compat IOAS yet
        // iommufd_vfio_check_extension: an extension number it does not know is answered 0, not an error.
        Assert.Equal(Errno.OK, s.Process.VfioCheckExtension(container, VfioIoctls.DirtyPagesExtension, out int dirty));
        Assert.Equal(0, dirty);
        Assert.Equal(Errno.ENODEV, s.Process.VfioSetIommu(container, VfioConst.VFIO_TYPE1v2_IOMMU));
    }

    /// <summary>The legacy sequence through the fds: group → container → SET_IOMMU → device fd → MAP_DMA makes the IOVA reach
    /// the buffer; UNMAP_DMA reports the bytes unmapped (iommufd_vfio_unmap_dma) and the DMA faults again.</summary>
    [Fact]
    public void Legacy_map_and_unmap_through_the_container_fd_reach_the_hardware()
    {
        var s = new Sim();
        int container = s.Process.OpenContainer(out _);
        Assert.Equal(Errno.OK, s.Process.OpenGroup(3, out int group));
        Assert.Equal(Errno.OK, s.Process.GroupSetContainer(group, container));
        Assert.Equal(Errno.OK, s.Process.VfioSetIommu(container, VfioConst.VFIO_TYPE1v2_IOMMU));
        Assert.Equal(Errno.OK, s.Process.GroupGetDeviceFd(group, "0000:03:00.0", out _));
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Process.VfioIommuMapDma(container, new VfioIommuType1DmaMap { vaddr = buf, iova = 0x1000_0000, size = 0x200000, flags = RW }));
        Assert.False(s.Dma(Sim.Dev3, 0x1000_0040, Access.Write).Faulted);
        var unmap = new VfioIommuType1DmaUnmap { iova = 0x1000_0000, size = 0x200000 };
        Assert.Equal(Errno.OK, s.Process.VfioIommuUnmapDma(container, unmap));
        Assert.Equal(0x200000ul, unmap.size);
        Assert.True(s.Dma(Sim.Dev3, 0x1000_0040, Access.Write).Faulted);
    }

    /// <summary>vfio_df_ioctl_bind_iommufd: without an iommufd EBADF and no fd stays open; a second bind of the device
    /// is refused (the cdev is open: EBUSY) and closes nothing of the first; attach/detach find the cdev by dev_id (ENOENT otherwise).</summary>
    [Fact]
    public void Cdev_bind_attach_detach_by_dev_id()
    {
        var s = new Sim();
        var dev = s.Device(Sim.Dev3);
        Assert.Equal(Errno.ENODEV, s.Process.VfioDeviceBindIommufd(null, s.Ctx, new VfioDeviceBindIommufd(), out _));
        Assert.Equal(Errno.EBADF, s.Process.VfioDeviceBindIommufd(dev, null, new VfioDeviceBindIommufd(), out int none));
        Assert.Equal(-1, none);

        var bind = new VfioDeviceBindIommufd();
        Assert.Equal(Errno.OK, s.Process.VfioDeviceBindIommufd(dev, s.Ctx, bind, out int fd));
        Assert.NotNull(s.Process.DeviceFile(fd));
        Assert.Equal(Errno.EBUSY, s.Process.VfioDeviceBindIommufd(dev, s.Ctx, new VfioDeviceBindIommufd(), out _));
        Assert.NotNull(s.Process.DeviceFile(fd));

        // A bind with flags fails inside vfio_df_ioctl_bind_iommufd (EINVAL): the fd it opened is closed again.
        var s2 = new Sim();
        Assert.Equal(Errno.EINVAL, s2.Process.VfioDeviceBindIommufd(s2.Device(Sim.Dev3), s2.Ctx, new VfioDeviceBindIommufd { flags = 1 }, out int bad));
        Assert.Equal(-1, bad);
        Assert.Equal(Errno.OK, s2.Process.VfioDeviceBindIommufd(s2.Device(Sim.Dev3), s2.Ctx, new VfioDeviceBindIommufd(), out _));

        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.ENOENT, s.Process.VfioDeviceAttachIommufdPt(s.Ctx, bind.out_devid + 1, new VfioDeviceAttachIommufdPt { pt_id = ioas }));
        var attach = new VfioDeviceAttachIommufdPt { pt_id = ioas };
        Assert.Equal(Errno.OK, s.Process.VfioDeviceAttachIommufdPt(s.Ctx, bind.out_devid, attach));
        Assert.IsType<HwptPaging>(s.Ctx.Lookup(attach.pt_id)); // out: the HWPT the IOAS attach used
        Assert.Equal(Errno.ENOENT, s.Process.VfioDeviceDetachIommufdPt(null, bind.out_devid, new VfioDeviceDetachIommufdPt()));
        Assert.Equal(Errno.OK, s.Process.VfioDeviceDetachIommufdPt(s.Ctx, bind.out_devid, new VfioDeviceDetachIommufdPt()));
    }
}
