using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vfio;

namespace IommuSim.Uapi.Tests;

/// <summary>iommufd.md sections 1 (cdev, legacy groups) and 4 (type1 through the compat shim).</summary>
public class VfioTests
{
    private const uint RW = VfioConst.VFIO_DMA_MAP_FLAG_READ | VfioConst.VFIO_DMA_MAP_FLAG_WRITE;

    /// <summary>A legacy program up to an open device: container, group 3, type, device fd.</summary>
    private static (Sim S, IommufdContext C, int Container, int Group) Legacy(uint type = VfioConst.VFIO_TYPE1v2_IOMMU, bool openDevice = true)
    {
        var s = new Sim();
        int container = s.Process.OpenContainer(out var c);
        Assert.Equal(Errno.OK, s.Process.OpenGroup(3, out int group));
        Assert.Equal(Errno.OK, s.Process.GroupSetContainer(group, container));
        Assert.Equal(Errno.OK, c.VfioSetIommu(type));
        if (openDevice) Assert.Equal(Errno.OK, s.Process.GroupGetDeviceFd(group, "0000:03:00.0", out _));
        return (s, c, container, group);
    }

    [Fact]
    public void LegacyAndCdevPaths_ProgramIdenticalHardwareTables()
    {
        // Legacy: container + group + type1v2 + MAP_DMA.
        var (l, lc, _, lgroup) = Legacy(openDevice: false);
        ulong lbuf = l.Mmap(0x600000);
        Assert.Equal(Errno.OK, l.Process.GroupGetDeviceFd(lgroup, "0000:03:00.0", out _));
        Assert.Equal(Errno.OK, lc.VfioMapDma(new VfioIommuType1DmaMap { vaddr = lbuf, iova = 0x4000_0000, size = 0x400000, flags = RW }));
        Assert.Equal(Errno.OK, lc.VfioMapDma(new VfioIommuType1DmaMap { vaddr = lbuf + 0x400000, iova = 0x5000_0000, size = 0x3000, flags = VfioConst.VFIO_DMA_MAP_FLAG_READ }));

        // cdev: IOAS + bind + attach + IOAS_MAP, the same memory actions in the same order.
        var c = new Sim();
        c.Process.OpenContainer(out _); // keep fd numbering and allocation order alike (unused)
        ulong cbuf = c.Mmap(0x600000);
        uint ioas = c.IoasAlloc();
        Assert.Equal(Errno.OK, c.Process.OpenDeviceCdev(c.Device(Sim.Dev3), out int fd));
        var file = c.Process.DeviceFile(fd)!;
        var bind = new VfioDeviceBindIommufd();
        Assert.Equal(Errno.OK, file.BindIommufd(c.Ctx, bind));
        var attach = new VfioDeviceAttachIommufdPt { pt_id = ioas };
        Assert.Equal(Errno.OK, file.AttachPt(attach));
        Assert.Equal(Errno.OK, c.Map(ioas, cbuf, 0x400000, 0x4000_0000));
        Assert.Equal(Errno.OK, c.Map(ioas, cbuf + 0x400000, 0x3000, 0x5000_0000, IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.READABLE));

        Assert.Equal(l.Port.Tables.ReadContext(Sim.Dev3), c.Port.Tables.ReadContext(Sim.Dev3));
        var le = l.Port.Tables.ReadPasidEntry(Sim.Dev3, 0);
        var ce = c.Port.Tables.ReadPasidEntry(Sim.Dev3, 0);
        Assert.True(le.Present);
        Assert.Equal(le, ce);

        var lt = ((IommuSim.Uapi.Driver.VtdPagingDomain)((HwptPaging)lc.Lookup(lc.CompatIoas!.HwptList[0].Id)!).PagingDomain).Table;
        var ct = ((IommuSim.Uapi.Driver.VtdPagingDomain)((HwptPaging)c.Ctx.Lookup(attach.pt_id)!).PagingDomain).Table;
        foreach (var (start, len) in new[] { (0x4000_0000ul, 0x400000ul), (0x5000_0000ul, 0x4000ul) })
        {
            for (ulong iova = start; iova < start + len; iova += 0x1000)
            {
                bool lok = lt.TryTranslate(iova, out ulong lpa, out var lacc, out var lsz);
                bool cok = ct.TryTranslate(iova, out ulong cpa, out var cacc, out var csz);
                Assert.Equal(lok, cok);
                Assert.Equal((lpa, lacc, lsz), (cpa, cacc, csz));
            }
        }
        Assert.Equal(lt.TablePages, ct.TablePages);
    }

    [Fact]
    public void LegacyOpen_BindsAndAttachesToTheCompatIoas_WithoutReturningIds()
    {
        var (s, c, _, _) = Legacy();
        var compat = c.CompatIoas!;
        var hwpt = Assert.Single(compat.HwptList);
        Assert.True(hwpt.AutoDomain);
        Assert.True(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).Present);
    }

    [Fact]
    public void GroupSetContainer_Errors()
    {
        var s = new Sim();
        int container = s.Process.OpenContainer(out _);
        Assert.Equal(Errno.ENOENT, s.Process.OpenGroup(9, out _));
        Assert.Equal(Errno.OK, s.Process.OpenGroup(3, out int group));
        Assert.Equal(Errno.EBUSY, s.Process.OpenGroup(3, out _));
        Assert.Equal(Errno.EBADF, s.Process.GroupSetContainer(group, 99));
        Assert.Equal(Errno.EBADFD, s.Process.GroupSetContainer(group, group));
        Assert.Equal(Errno.OK, s.Process.GroupSetContainer(group, container));
        Assert.Equal(Errno.EINVAL, s.Process.GroupSetContainer(group, container));
        var st = new VfioGroupStatus();
        Assert.Equal(Errno.OK, s.Process.GroupGetStatus(group, st));
        Assert.Equal(VfioConst.VFIO_GROUP_FLAGS_VIABLE | VfioConst.VFIO_GROUP_FLAGS_CONTAINER_SET, st.flags);
        Assert.Equal(Errno.ENODEV, s.Process.GroupGetDeviceFd(group, "0000:04:00.0", out _));   // not in group 3
    }

    [Fact]
    public void GroupGetDeviceFd_WithoutContainer_IsEINVAL()
    {
        var s = new Sim();
        Assert.Equal(Errno.OK, s.Process.OpenGroup(3, out int group));
        Assert.Equal(Errno.EINVAL, s.Process.GroupGetDeviceFd(group, "0000:03:00.0", out _));
    }

    [Theory]
    [InlineData(VfioConst.VFIO_TYPE1_IOMMU, 1)]
    [InlineData(VfioConst.VFIO_TYPE1v2_IOMMU, 1)]
    [InlineData(VfioConst.VFIO_UNMAP_ALL, 1)]
    [InlineData(VfioConst.VFIO_DMA_CC_IOMMU, 1)]
    [InlineData(VfioConst.VFIO_TYPE1_NESTING_IOMMU, 0)]
    [InlineData(VfioConst.VFIO_UPDATE_VADDR, 0)]
    [InlineData(VfioConst.VFIO_NOIOMMU_IOMMU, 0)]
    [InlineData(VfioConst.VFIO_SPAPR_TCE_IOMMU, 0)]
    public void CheckExtension(uint ext, int expected)
    {
        var (_, c, _, _) = Legacy();
        Assert.Equal(expected, c.VfioCheckExtension(ext));
    }

    [Fact]
    public void CompatCalls_WithoutCompatIoas_AreENODEV()
    {
        var s = new Sim();
        s.Process.OpenContainer(out var c);
        Assert.Equal(-(int)Errno.ENODEV, c.VfioCheckExtension(VfioConst.VFIO_DMA_CC_IOMMU));
        Assert.Equal(Errno.ENODEV, c.VfioSetIommu(VfioConst.VFIO_TYPE1v2_IOMMU));
        Assert.Equal(Errno.ENODEV, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = s.Mmap(0x1000), iova = 0x1000, size = 0x1000, flags = RW }));
        Assert.Equal(Errno.ENODEV, c.VfioUnmapDma(new VfioIommuType1DmaUnmap { iova = 0x1000, size = 0x1000 }));
        Assert.Equal(Errno.ENODEV, c.VfioIommuGetInfo(new VfioIommuType1Info()));
        Assert.Equal(Errno.EINVAL, c.VfioSetIommu(VfioConst.VFIO_SPAPR_TCE_IOMMU));
    }

    [Fact]
    public void MapDma_Validation()
    {
        var (s, c, _, _) = Legacy();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.EINVAL, c.VfioMapDma(new VfioIommuType1DmaMap { argsz = 16, vaddr = buf, iova = 0x100000, size = 0x1000, flags = RW }));
        Assert.Equal(Errno.EINVAL, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf, iova = 0x100000, size = 0x1000, flags = VfioConst.VFIO_DMA_MAP_FLAG_VADDR }));
        Assert.Equal(Errno.OK, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf, iova = 0x100000, size = 0x1000, flags = RW }));
        Assert.Equal(Errno.EEXIST, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf, iova = 0x100000, size = 0x1000, flags = RW }));
    }

    [Fact]
    public void UnmapDma_Type1v2_WholeMappingsOnly_EmptyRangeSucceeds()
    {
        var (s, c, _, _) = Legacy();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf, iova = 0x100000, size = 0x4000, flags = RW }));
        Assert.Equal(Errno.ENOENT, c.VfioUnmapDma(new VfioIommuType1DmaUnmap { iova = 0x101000, size = 0x1000 }));
        var empty = new VfioIommuType1DmaUnmap { iova = 0x900000, size = 0x1000 };
        Assert.Equal(Errno.OK, c.VfioUnmapDma(empty));
        Assert.Equal(0ul, empty.size);
        Assert.Equal(Errno.EINVAL, c.VfioUnmapDma(new VfioIommuType1DmaUnmap { iova = 0x100000, size = 0x4000, flags = VfioConst.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP }));
        Assert.Equal(Errno.EINVAL, c.VfioUnmapDma(new VfioIommuType1DmaUnmap { iova = 0x100000, size = 0x4000, flags = VfioConst.VFIO_DMA_UNMAP_FLAG_VADDR }));
        Assert.Equal(Errno.EINVAL, c.VfioUnmapDma(new VfioIommuType1DmaUnmap { argsz = 8, iova = 0x100000, size = 0x4000 }));
        var whole = new VfioIommuType1DmaUnmap { iova = 0x100000, size = 0x4000 };
        Assert.Equal(Errno.OK, c.VfioUnmapDma(whole));
        Assert.Equal(0x4000ul, whole.size);
    }

    [Fact]
    public void UnmapDma_All_NeedsZeroIovaAndSize()
    {
        var (s, c, _, _) = Legacy();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf, iova = 0x100000, size = 0x4000, flags = RW }));
        Assert.Equal(Errno.OK, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf, iova = 0x200000, size = 0x1000, flags = RW }));
        Assert.Equal(Errno.EINVAL, c.VfioUnmapDma(new VfioIommuType1DmaUnmap { flags = VfioConst.VFIO_DMA_UNMAP_FLAG_ALL, iova = 0x100000 }));
        var all = new VfioIommuType1DmaUnmap { flags = VfioConst.VFIO_DMA_UNMAP_FLAG_ALL };
        Assert.Equal(Errno.OK, c.VfioUnmapDma(all));
        Assert.Equal(0x5000ul, all.size);
        Assert.True(s.Dma(Sim.Dev3, 0x100000).Faulted);
    }

    [Fact]
    public void UnmapDma_Type1v1_CutsMappings_AndTheCutPartFaults()
    {
        var (s, c, _, _) = Legacy(VfioConst.VFIO_TYPE1_IOMMU);
        Assert.True(c.CompatIoas!.Iopt.DisableLargePages);
        ulong buf = s.Mmap(0x400000);
        Assert.Equal(Errno.OK, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf, iova = 0x4000_0000, size = 0x400000, flags = RW }));
        var u = new VfioIommuType1DmaUnmap { iova = 0x4010_0000, size = 0x1000 };
        Assert.Equal(Errno.OK, c.VfioUnmapDma(u));
        Assert.Equal(0x1000ul, u.size);
        Assert.Equal(2, c.CompatIoas.Iopt.Areas.Count);   // cut in three, the middle one unmapped
        Assert.True(s.Dma(Sim.Dev3, 0x4010_0000).Faulted);
        Assert.False(s.Dma(Sim.Dev3, 0x400F_F000).Faulted);
        Assert.False(s.Dma(Sim.Dev3, 0x4010_1000).Faulted);
        // A cut below the IOAS alignment is refused.
        Assert.Equal(Errno.EINVAL, c.VfioUnmapDma(new VfioIommuType1DmaUnmap { iova = 0x4020_0800, size = 0x1000 }));
    }

    [Fact]
    public void GetInfo_FullAndShortArgsz()
    {
        var (_, c, _, _) = Legacy();
        var full = new VfioIommuType1Info { argsz = 4096 };
        Assert.Equal(Errno.OK, c.VfioIommuGetInfo(full));
        Assert.Equal(VfioConst.VFIO_IOMMU_INFO_PGSIZES | VfioConst.VFIO_IOMMU_INFO_CAPS, full.flags);
        Assert.Equal(0x4020_1000ul, full.iova_pgsizes);
        Assert.Equal(24u, full.cap_offset);
        Assert.Equal(24u + 16 + 2 * 16 + 16, full.argsz);
        Assert.Equal(2, full.caps.Count);
        Assert.Equal(2, full.caps[0].iova_ranges.Count);
        Assert.Equal(65535u, full.caps[1].avail);

        var shortInfo = new VfioIommuType1Info { argsz = 24 };
        Assert.Equal(Errno.OK, c.VfioIommuGetInfo(shortInfo));
        Assert.Equal(0u, shortInfo.cap_offset);
        Assert.Equal(full.argsz, shortInfo.argsz);
        Assert.Empty(shortInfo.caps);
        Assert.Equal(Errno.EINVAL, c.VfioIommuGetInfo(new VfioIommuType1Info { argsz = 8 }));
    }

    [Fact]
    public void GetInfo_WithoutDomains_ReportsPageSizeAndUp()
    {
        var (_, c, _, _) = Legacy(openDevice: false);
        var info = new VfioIommuType1Info { argsz = 4096 };
        Assert.Equal(Errno.OK, c.VfioIommuGetInfo(info));
        Assert.Equal(~0xFFFul, info.iova_pgsizes);
    }

    [Fact]
    public void Cdev_SecondAttachIsAReplace_DetachOfNothingIsFine()
    {
        var s = new Sim();
        uint a = s.IoasAlloc(), b = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Process.OpenDeviceCdev(s.Device(Sim.Dev3), out int fd));
        var f = s.Process.DeviceFile(fd)!;
        Assert.Equal(Errno.EINVAL, f.AttachPt(new VfioDeviceAttachIommufdPt { pt_id = a }));   // not bound yet
        Assert.Equal(Errno.OK, f.BindIommufd(s.Ctx, new VfioDeviceBindIommufd()));
        Assert.Equal(Errno.EINVAL, f.BindIommufd(s.Ctx, new VfioDeviceBindIommufd()));
        var at = new VfioDeviceAttachIommufdPt { pt_id = a };
        Assert.Equal(Errno.OK, f.AttachPt(at));
        uint first = at.pt_id;
        at = new VfioDeviceAttachIommufdPt { pt_id = b };
        Assert.Equal(Errno.OK, f.AttachPt(at));
        Assert.NotEqual(first, at.pt_id);
        Assert.Null(s.Ctx.Lookup(first));
        Assert.Equal(Errno.OK, f.DetachPt(new VfioDeviceDetachIommufdPt()));
        Assert.Equal(Errno.OK, f.DetachPt(new VfioDeviceDetachIommufdPt()));
        Assert.Equal(Errno.OK, f.DetachPt(new VfioDeviceDetachIommufdPt { flags = VfioConst.VFIO_DEVICE_DETACH_PASID, pasid = 5 }));
        Assert.Equal(Errno.EINVAL, f.AttachPt(new VfioDeviceAttachIommufdPt { pt_id = a, flags = 2 }));
        Assert.False(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).Present);
    }

    [Fact]
    public void Cdev_DeviceOpenTwice_IsEBUSY_AndLegacyAndCdevExcludeEachOther()
    {
        var (s, _, _, _) = Legacy();
        Assert.Equal(Errno.EBUSY, s.Process.OpenDeviceCdev(s.Device(Sim.Dev3), out _));
    }

    [Fact]
    public void CloseDeviceFd_Unbinds_AndTheAutoDomainGoes()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Process.OpenDeviceCdev(s.Device(Sim.Dev3), out int fd));
        var f = s.Process.DeviceFile(fd)!;
        Assert.Equal(Errno.OK, f.BindIommufd(s.Ctx, new VfioDeviceBindIommufd()));
        var at = new VfioDeviceAttachIommufdPt { pt_id = ioas };
        Assert.Equal(Errno.OK, f.AttachPt(at));
        Assert.Equal(Errno.OK, s.Process.Close(fd));
        Assert.Null(s.Ctx.Lookup(at.pt_id));
        Assert.False(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).Present);
        Assert.Equal(Errno.EBADF, s.Process.Close(fd));
    }
}
