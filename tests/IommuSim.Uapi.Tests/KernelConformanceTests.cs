using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vfio;

namespace IommuSim.Uapi.Tests;

/// <summary>
/// The points where the model disagreed with the kernel (issue 13), each pinned to the kernel function that decides
/// it, and calls with sizes near 2^64 that must return the kernel's errno rather than throw.
/// </summary>
public class KernelConformanceTests
{
    private const uint F = IommuIoasMapFlags.FIXED_IOVA, R = IommuIoasMapFlags.READABLE, W = IommuIoasMapFlags.WRITEABLE;

    /// <summary>iopt_alloc_user_pages: check_add_overflow(uptr, length) → EOVERFLOW (before iopt_alloc_pages' EINVAL).</summary>
    [Fact]
    public void IoasMap_UserVaPlusLengthWraps_IsEOVERFLOW()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.EOVERFLOW, s.Ctx.IoasMap(new IommuIoasMap { ioas_id = ioas, user_va = ulong.MaxValue - 0xFFF, length = 0x2000, iova = 0x10000, flags = F | R }));
        Assert.Equal(Errno.EOVERFLOW, s.Ctx.IoasMap(new IommuIoasMap { ioas_id = ioas, user_va = 0x8000_0000_0000_0000, length = 0x8000_0000_0000_0000, flags = R }));
        Assert.Empty(s.IoasObj(ioas).Iopt.Areas);
    }

    /// <summary>iommufd_hwpt_paging_alloc: FAULT_ID_VALID together with NEST_PARENT is EOPNOTSUPP (checked before the
    /// fault id is looked up), and nothing is allocated.</summary>
    [Fact]
    public void HwptAlloc_NestParentWithFault_IsEOPNOTSUPP()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        var f = new IommuFaultAlloc();
        Assert.Equal(Errno.OK, s.Ctx.FaultQueueAlloc(f));
        int before = s.Ctx.Objects.Count();
        var c = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.NEST_PARENT | IommuHwptAllocFlags.FAULT_ID_VALID, fault_id = f.out_fault_id };
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.HwptAlloc(c));
        c.fault_id = 999; // still EOPNOTSUPP: the fault is looked up only after the HWPT exists
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.HwptAlloc(c));
        Assert.Equal(before, s.Ctx.Objects.Count());
        Assert.Empty(s.IoasObj(ioas).Iopt.Domains);
        Assert.Equal(0, s.IoasObj(ioas).Users);
    }

    /// <summary>iommufd_hwpt_alloc: a bad fault_id is found only after the HWPT was made; the HWPT is destroyed again
    /// (iommufd_object_abort_and_destroy): no domain, id or reference is left behind.</summary>
    [Fact]
    public void HwptAlloc_BadFaultId_IsENOENT_AndLeavesNothing()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.ENOENT, s.Ctx.HwptAlloc(new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.FAULT_ID_VALID, fault_id = 77 }));
        Assert.Empty(s.IoasObj(ioas).Iopt.Domains);
        Assert.Empty(s.IoasObj(ioas).HwptList);
        Assert.Equal(0, s.IoasObj(ioas).Users);
        Assert.Equal(2, s.Ctx.Objects.Count());
    }

    /// <summary>iommufd_vfio_iommu_get_info: copy_from_user of offsetofend(iova_pgsizes) = 16 bytes, argsz below it is
    /// EINVAL before get_compat_ioas (ENODEV); a 16-byte struct (pre-capability userspace) is answered.</summary>
    [Fact]
    public void VfioGetInfo_ChecksArgszBeforeTheCompatIoas_AndAcceptsThePreCapabilityStruct()
    {
        var s = new Sim();
        s.Process.OpenContainer(out var c);
        Assert.Equal(Errno.EINVAL, c.VfioIommuGetInfo(new VfioIommuType1Info { argsz = 8 }));
        Assert.Equal(Errno.ENODEV, c.VfioIommuGetInfo(new VfioIommuType1Info { argsz = 16 }));
        c.CompatIoasGetOrCreate();
        var old = new VfioIommuType1Info { argsz = 16 };
        Assert.Equal(Errno.OK, c.VfioIommuGetInfo(old));
        Assert.NotEqual(0ul, old.iova_pgsizes);
        Assert.Equal(0u, old.cap_offset);               // past the 16 bytes: not written
        Assert.True(old.argsz > VfioIommuType1Info.MinSize); // the size the whole chain needs
        Assert.Empty(old.caps);
    }

    /// <summary>iommufd_get_hw_info: IOMMU_HW_INFO_FLAG_INPUT_TYPE is a known flag; in_data_type must then be a type
    /// the driver knows (intel_iommu_hw_info: DEFAULT or INTEL_VTD, else EOPNOTSUPP); other flags are EOPNOTSUPP.</summary>
    [Theory]
    [InlineData(IommuHwInfoFlags.INPUT_TYPE, IommuHwInfoType.INTEL_VTD, Errno.OK)]
    [InlineData(IommuHwInfoFlags.INPUT_TYPE, IommuHwInfoType.DEFAULT, Errno.OK)]
    [InlineData(IommuHwInfoFlags.INPUT_TYPE, 2u, Errno.EOPNOTSUPP)]   // ARM_SMMUV3 asked of a VT-d device
    [InlineData(0u, 2u, Errno.OK)]                                     // without the flag the type is cleared
    [InlineData(2u, 0u, Errno.EOPNOTSUPP)]
    public void GetHwInfo_InputType(uint flags, uint inType, Errno expected)
    {
        var s = new Sim();
        var dev = s.Bind(Sim.Dev3);
        var c = new IommuHwInfo { dev_id = dev.Id, flags = flags, out_data_type = inType, data_len = 24, data = new byte[24] };
        Assert.Equal(expected, s.Ctx.GetHwInfo(c));
        if (expected == Errno.OK) Assert.Equal(IommuHwInfoType.INTEL_VTD, c.out_data_type);
    }

    /// <summary>iommufd_get_hw_info: data_len is the caller's buffer length, up to 2^32 − 1; only the kernel's 24
    /// bytes are data, the rest is zeroed. The model must not allocate the caller's length.</summary>
    [Fact]
    public void GetHwInfo_HugeDataLen_ReturnsTheKernelLength()
    {
        var s = new Sim();
        var dev = s.Bind(Sim.Dev3);
        var buf = Enumerable.Repeat((byte)0xAA, 64).ToArray();
        var c = new IommuHwInfo { dev_id = dev.Id, data_len = uint.MaxValue, data = buf };
        Assert.Equal(Errno.OK, s.Ctx.GetHwInfo(c));
        Assert.Equal(IommufdContext.HwInfoVtdLen, c.data_len);
        Assert.All(buf.Skip(24), b => Assert.Equal(0, b));
    }

    /// <summary>iommufd_ioas_iova_ranges: num_iovas is the caller's capacity (u32, up to 2^32 − 1); the kernel writes
    /// only the ranges that exist.</summary>
    [Fact]
    public void IovaRanges_HugeCapacity_WritesOnlyTheRanges()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var c = new IommuIoasIovaRanges { ioas_id = ioas, num_iovas = uint.MaxValue };
        Assert.Equal(Errno.OK, s.Ctx.IoasIovaRanges(c));
        Assert.Equal(1u, c.num_iovas);
        Assert.Single(c.allowed_iovas);
    }

    /// <summary>iommufd_access_create gives a pinning access iova_alignment = PAGE_SIZE; iopt_add_access →
    /// iopt_calculate_iova_alignment raises the IOAS to it (EADDRINUSE when an area is not aligned);
    /// iopt_remove_access lowers it again.</summary>
    [Fact]
    public void AccessCreate_RaisesTheIoasAlignmentToPageSize()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        var iopt = s.IoasObj(ioas).Iopt;
        Assert.Equal(1ul, iopt.IovaAlignment);
        Assert.Equal(Errno.OK, s.Map(ioas, buf + 0x10, 0x800, 0x100010, F | R));    // byte-granular while alignment is 1
        Assert.Equal(Errno.EADDRINUSE, s.Ctx.AccessCreate(ioas, out _));
        Assert.Equal(0, s.IoasObj(ioas).Users);
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x100010, 0x800));
        Assert.Equal(Errno.OK, s.Ctx.AccessCreate(ioas, out uint acc));
        Assert.Equal(IoPagetableConst.Page, iopt.IovaAlignment);
        Assert.Equal(Errno.EINVAL, s.Map(ioas, buf, 0x800, 0x100000, F | R));
        Assert.Equal(Errno.OK, s.Ctx.Destroy(new IommuDestroy { id = acc }));
        Assert.Equal(1ul, iopt.IovaAlignment);
    }

    /// <summary>iopt_unmap_iova_range: an area an access pinned (num_accesses) is not EBUSY: the kernel calls
    /// iommufd_access_notify_unmap, the access's unmap op unpins (iommufd_test_access_unmap), and the area goes.</summary>
    [Fact]
    public void IoasUnmap_OverAccessPins_NotifiesTheAccess_AndUnmaps()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 0x4000, 0x100000));
        Assert.Equal(Errno.OK, s.Ctx.AccessCreate(ioas, out uint accId));
        var acc = (IommufdAccess)s.Ctx.Lookup(accId)!;
        Assert.Equal(Errno.OK, acc.Pin(0x101000, 0x1000));
        Assert.Equal(1ul, s.Process.Mm.Memlock.PinnedPages);
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x100000, 0x4000));
        Assert.Empty(acc.Pins);
        Assert.Empty(s.IoasObj(ioas).Iopt.Areas);
        Assert.Equal(0ul, s.Process.Mm.Memlock.PinnedPages);
        Assert.Equal(Errno.EINVAL, acc.Unpin(0x101000, 0x1000));  // the access already let go
        Assert.Equal(Errno.EBUSY, s.Ctx.Destroy(new IommuDestroy { id = ioas })); // the access still holds the IOAS
    }

    /// <summary>An access pins like a domain does (pfn_reader_user_pin: GUP with FOLL_WRITE for a writable iopt_pages):
    /// read-only memory under a WRITEABLE area is EFAULT, and nothing stays charged.</summary>
    [Fact]
    public void AccessPin_OfReadOnlyMemoryInAWriteableArea_IsEFAULT()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong ro = s.Mmap(0x1000, writable: false);
        Assert.Equal(Errno.OK, s.Map(ioas, ro, 0x1000, 0x100000, F | R | W));
        Assert.Equal(Errno.OK, s.Ctx.AccessCreate(ioas, out uint accId));
        var acc = (IommufdAccess)s.Ctx.Lookup(accId)!;
        Assert.Equal(Errno.EFAULT, acc.Pin(0x100000, 0x1000));
        Assert.Equal(0ul, s.Process.Mm.Memlock.PinnedPages);
    }

    /// <summary>iopt_read_and_clear_dirty_data walks only the areas inside the range (iova_bitmap_for_each over the
    /// user bitmap, then each area through the driver): a 2^48-byte range costs what is mapped, not 2^36 steps.</summary>
    [Fact]
    public void DirtyBitmap_OverA2Pow48Range_ReportsTheMappedDirtyPages()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x10000), 0x10000, 0x1_0000_0000));
        var dev = s.Bind(Sim.Dev3);
        var h = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.DIRTY_TRACKING };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(h));
        Assert.Equal(Errno.OK, s.Attach(dev, h.out_hwpt_id, out _));
        Assert.Equal(Errno.OK, s.Ctx.HwptSetDirtyTracking(new IommuHwptSetDirtyTracking { hwpt_id = h.out_hwpt_id, flags = IommuHwptSetDirtyTrackingFlags.ENABLE }));
        Assert.False(s.Dma(Sim.Dev3, 0x1_0000_3000, Access.Write).Faulted);
        var b = new IommuHwptGetDirtyBitmap { hwpt_id = h.out_hwpt_id, iova = 0, length = 1UL << 48, page_size = 0x1000 };
        Assert.Equal(Errno.OK, s.Ctx.HwptGetDirtyBitmap(b));
        Assert.Equal((1UL << 36) / 64, b.data.Length);
        ulong bit = 0x1_0000_3000UL / 0x1000;
        Assert.Equal(1UL << (int)(bit % 64), b.data[bit / 64]);
        Assert.Single(b.data.NonZero);
        // The largest range the checks allow: every page of the 64-bit space, no overflow in the bit count.
        var all = new IommuHwptGetDirtyBitmap { hwpt_id = h.out_hwpt_id, iova = 0, length = ulong.MaxValue - 0xFFF, page_size = 0x1000 };
        Assert.Equal(Errno.OK, s.Ctx.HwptGetDirtyBitmap(all));
        Assert.Equal((1UL << 52) / 64, all.data.Length);
    }

    /// <summary>mmap/memfd sizes near 2^64: ENOMEM (vm_mmap: the length does not fit the address space) and EINVAL
    /// (do_sys_ftruncate: a negative off_t), never an exception.</summary>
    [Theory]
    [InlineData(ulong.MaxValue)]
    [InlineData(ulong.MaxValue - 0x1FFFFF)]
    [InlineData(1UL << 62)]   // fits the address space, not the simulated machine
    public void Mmap_And_Memfd_HugeSizes_GiveErrno(ulong size)
    {
        var s = new Sim();
        Assert.Equal(Errno.ENOMEM, s.Process.Mm.TryMmap(size, true, 2UL << 20, out _));
        var rc = s.Process.TryCreateMemfd(size, out int fd, out _);
        Assert.Equal(size > long.MaxValue ? Errno.EINVAL : Errno.ENOMEM, rc);
        Assert.Equal(-1, fd);
        Assert.Equal(Errno.OK, s.Process.Mm.TryMmap(0x1000, true, 2UL << 20, out _)); // nothing was consumed
    }
}

internal static class IoPagetableConst
{
    public const ulong Page = Iopt.IoPagetable.PageSize;
}
