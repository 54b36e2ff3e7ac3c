using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests;

/// <summary>Dirty tracking, fault queues, GET_HW_INFO, vIOMMU and vDEVICE.</summary>
public class DirtyFaultInfoTests
{
    private static (Sim S, uint Ioas, IommufdDevice Dev, uint Hwpt) DirtySetup()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.SET, object_id = ioas, val64 = 0 }));
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x10000), 0x10000, 0x100000));
        var dev = s.Bind(Sim.Dev3);
        var c = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.DIRTY_TRACKING };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(c));
        Assert.Equal(Errno.OK, s.Attach(dev, c.out_hwpt_id, out _));
        return (s, ioas, dev, c.out_hwpt_id);
    }

    private static IommuHwptGetDirtyBitmap Bitmap(uint hwpt, uint flags = 0)
        => new() { hwpt_id = hwpt, iova = 0x100000, length = 0x10000, page_size = 0x1000, flags = flags };

    [Fact]
    public void DirtyTracking_DmaWritesSetBits_ReadClears_NoClearKeeps()
    {
        var (s, _, _, hwpt) = DirtySetup();
        Assert.Equal(Errno.OK, s.Ctx.HwptSetDirtyTracking(new IommuHwptSetDirtyTracking { hwpt_id = hwpt, flags = IommuHwptSetDirtyTrackingFlags.ENABLE }));
        Assert.True(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).DirtyTracking);
        Assert.False(s.Dma(Sim.Dev3, 0x102000, Access.Write).Faulted);
        Assert.False(s.Dma(Sim.Dev3, 0x105000, Access.Read).Faulted);
        Assert.False(s.Dma(Sim.Dev3, 0x10F000, Access.Write).Faulted);

        var b = Bitmap(hwpt, IommuHwptGetDirtyBitmapFlags.NO_CLEAR);
        Assert.Equal(Errno.OK, s.Ctx.HwptGetDirtyBitmap(b));
        Assert.Equal((1ul << 2) | (1ul << 15), b.data[0]);
        b = Bitmap(hwpt);
        Assert.Equal(Errno.OK, s.Ctx.HwptGetDirtyBitmap(b));
        Assert.Equal((1ul << 2) | (1ul << 15), b.data[0]);
        b = Bitmap(hwpt);
        Assert.Equal(Errno.OK, s.Ctx.HwptGetDirtyBitmap(b));
        Assert.Equal(0ul, b.data[0]);
        // After the clear (and its IOTLB flush) a new write marks the page again.
        Assert.False(s.Dma(Sim.Dev3, 0x102000, Access.Write).Faulted);
        b = Bitmap(hwpt);
        Assert.Equal(Errno.OK, s.Ctx.HwptGetDirtyBitmap(b));
        Assert.Equal(1ul << 2, b.data[0]);
    }

    [Fact]
    public void DirtyTracking_Disabled_LeavesNoBits_AndEnablingStartsClean()
    {
        var (s, _, _, hwpt) = DirtySetup();
        Assert.False(s.Dma(Sim.Dev3, 0x102000, Access.Write).Faulted);
        var b = Bitmap(hwpt);
        Assert.Equal(Errno.OK, s.Ctx.HwptGetDirtyBitmap(b));
        Assert.Equal(0ul, b.data[0]);

        // Bits set while tracking was on are wiped when tracking is enabled again.
        var enable = new IommuHwptSetDirtyTracking { hwpt_id = hwpt, flags = IommuHwptSetDirtyTrackingFlags.ENABLE };
        Assert.Equal(Errno.OK, s.Ctx.HwptSetDirtyTracking(enable));
        Assert.False(s.Dma(Sim.Dev3, 0x103000, Access.Write).Faulted);
        Assert.Equal(Errno.OK, s.Ctx.HwptSetDirtyTracking(new IommuHwptSetDirtyTracking { hwpt_id = hwpt }));
        Assert.False(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).DirtyTracking);
        Assert.Equal(Errno.OK, s.Ctx.HwptSetDirtyTracking(enable));
        b = Bitmap(hwpt);
        Assert.Equal(Errno.OK, s.Ctx.HwptGetDirtyBitmap(b));
        Assert.Equal(0ul, b.data[0]);
    }

    [Fact]
    public void DirtyTracking_Validation()
    {
        var (s, ioas, dev, hwpt) = DirtySetup();
        var ctx = s.Ctx;
        Assert.Equal(Errno.EOPNOTSUPP, ctx.HwptSetDirtyTracking(new IommuHwptSetDirtyTracking { hwpt_id = hwpt, flags = 2 }));
        Assert.Equal(Errno.ENOENT, ctx.HwptSetDirtyTracking(new IommuHwptSetDirtyTracking { hwpt_id = ioas, flags = 1 }));
        var plain = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas };
        Assert.Equal(Errno.OK, ctx.HwptAlloc(plain));
        Assert.Equal(Errno.EOPNOTSUPP, ctx.HwptSetDirtyTracking(new IommuHwptSetDirtyTracking { hwpt_id = plain.out_hwpt_id, flags = 1 }));

        Assert.Equal(Errno.EOPNOTSUPP, ctx.HwptGetDirtyBitmap(Bitmap(hwpt, 2)));
        Assert.Equal(Errno.ENOENT, ctx.HwptGetDirtyBitmap(Bitmap(ioas)));
        Assert.Equal(Errno.EOVERFLOW, ctx.HwptGetDirtyBitmap(new IommuHwptGetDirtyBitmap { hwpt_id = hwpt, iova = ulong.MaxValue - 0xFFF, length = 0x2000, page_size = 0x1000 }));
        Assert.Equal(Errno.EINVAL, ctx.HwptGetDirtyBitmap(new IommuHwptGetDirtyBitmap { hwpt_id = hwpt, iova = 0x100800, length = 0x1000, page_size = 0x800 }));
        Assert.Equal(Errno.EINVAL, ctx.HwptGetDirtyBitmap(new IommuHwptGetDirtyBitmap { hwpt_id = hwpt, iova = 0x100000, length = 0x1000, page_size = 0 }));
        Assert.Equal(Errno.EINVAL, ctx.HwptGetDirtyBitmap(new IommuHwptGetDirtyBitmap { hwpt_id = hwpt, iova = 0x101000, length = 0x1000, page_size = 0x2000 }));
        Assert.Equal(Errno.OK, ctx.HwptGetDirtyBitmap(new IommuHwptGetDirtyBitmap { hwpt_id = hwpt, iova = 0x100000, length = 0x10000, page_size = 0x8000 }));
    }

    /// <summary>A PRI-capable device attached to an HWPT that reports its faults to a new FAULT object.</summary>
    internal static (Sim S, uint Fault, uint Ioas, IommufdDevice Dev, uint Hwpt) FaultSetup()
    {
        var s = new Sim(new PlatformSpec { Devices = [new DeviceSpec(Sim.Dev3, 3, Ats: true, PageRequests: true)] });
        var fa = new IommuFaultAlloc();
        Assert.Equal(Errno.OK, s.Ctx.FaultQueueAlloc(fa));
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        var alloc = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.FAULT_ID_VALID, fault_id = fa.out_fault_id };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(alloc));
        Assert.Equal(Errno.OK, s.Attach(dev, alloc.out_hwpt_id, out _));
        return (s, fa.out_fault_id, ioas, dev, alloc.out_hwpt_id);
    }

    /// <summary>What the IOMMU's page-request queue receives from the device (the hardware does not raise PRQs yet).</summary>
    private static void PageRequest(Sim s, ulong addr, int group, bool last, Access access = Access.Read)
        => s.Port.PageRequests.Record(new PageRequest(0, Sim.Dev3.Value, 0, false, addr, access, group, last));

    [Fact]
    public void FaultQueue_DeliversWholeGroups_WithCookies_AndValidatesResponses()
    {
        var (s, fault, ioas, dev, _) = FaultSetup();
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.FaultQueueAlloc(new IommuFaultAlloc { flags = 1 }));
        Assert.Equal(Errno.EBUSY, s.Ctx.Destroy(new IommuDestroy { id = fault }));

        // A group of two requests, the last one closing it.
        PageRequest(s, 0x5000, 3, last: false);
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 16, out var none));
        Assert.Empty(none);                                      // an incomplete group is not delivered
        PageRequest(s, 0x6000, 3, last: true, Access.Write);
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 1, out var tooSmall));
        Assert.Empty(tooSmall);                                  // whole groups only
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 16, out var faults));
        Assert.Equal(2, faults.Count);
        Assert.Equal(faults[0].cookie, faults[1].cookie);
        Assert.Equal(dev.Id, faults[0].dev_id);
        Assert.Equal(3u, faults[0].grpid);
        Assert.Equal(IommuHwptPgfault.FLAGS_LAST_PAGE, faults[1].flags & IommuHwptPgfault.FLAGS_LAST_PAGE);
        Assert.Equal(IommuHwptPgfault.PERM_WRITE, faults[1].perm);

        Assert.Equal(Errno.EINVAL, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = faults[0].cookie, code = 7 }));
        Assert.Equal(Errno.EINVAL, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = 999 }));
        Assert.Equal(Errno.OK, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = faults[0].cookie }));
        Assert.Equal(Errno.EINVAL, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = faults[0].cookie }));
        Assert.Equal(Errno.ENOENT, s.Ctx.FaultRead(ioas, 16, out _));
    }

    [Fact]
    public void FaultQueue_DetachAnswersOutstandingFaultsInvalid()
    {
        var (s, fault, _, dev, _) = FaultSetup();
        PageRequest(s, 0x5000, 1, last: true);
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 16, out var faults));
        var queue = (FaultQueue)s.Ctx.Lookup(fault)!;
        Assert.Equal(1, queue.AwaitingResponse);
        long before = s.Kernel.Driver.DescriptorCount;
        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(dev, 0));
        Assert.Equal(0, queue.AwaitingResponse);
        Assert.True(s.Kernel.Driver.DescriptorCount > before);
        Assert.Equal(Errno.EINVAL, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = faults[0].cookie }));
    }

    [Fact]
    public void FaultQueue_ReplaceAnswersOutstandingFaultsInvalid()
    {
        var (s, fault, ioas, dev, _) = FaultSetup();
        var plain = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(plain));
        PageRequest(s, 0x5000, 1, last: true);
        PageRequest(s, 0x7000, 2, last: true);
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 1, out var first));
        Assert.Single(first);
        var queue = (FaultQueue)s.Ctx.Lookup(fault)!;
        Assert.Equal(1, queue.PendingGroups);
        uint pt = plain.out_hwpt_id;
        Assert.Equal(Errno.OK, s.Ctx.DeviceReplace(dev, 0, ref pt));
        Assert.Equal(0, queue.AwaitingResponse);   // the read group was answered INVALID
        Assert.Equal(0, queue.PendingGroups);      // and so was the unread one
    }

    [Fact]
    public void PriDevice_PageFaultReachesTheUserQueue_AndTheDmaCompletesAfterTheResponse()
    {
        var (s, fault, ioas, _, _) = FaultSetup();
        s.Kernel.ListenForPageRequests();
        // The device cannot translate 0x40000000: it sends a page request and waits.
        Assert.Throws<InvalidOperationException>(() => s.Dma(Sim.Dev3, 0x4000_0000, Access.Write));
        Assert.Equal(1, s.Kernel.PageRequestsToUser);
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 16, out var faults));
        var f = Assert.Single(faults);
        Assert.Equal(0x4000_0000ul, f.addr);
        Assert.Equal(IommuHwptPgfault.PERM_WRITE, f.perm & IommuHwptPgfault.PERM_WRITE);

        // The user (a VMM with a lazily populated guest) maps the page, then answers SUCCESS.
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x1000), 0x1000, 0x4000_0000));
        long responses = s.Platform.Devices[0].Ats.PageResponses;
        Assert.Equal(Errno.OK, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = f.cookie, code = IommuHwptPageResponse.CODE_SUCCESS }));
        s.Port.Advance(100_000_000);
        Assert.Equal(responses + 1, s.Platform.Devices[0].Ats.PageResponses);
        Assert.False(s.Dma(Sim.Dev3, 0x4000_0040, Access.Write).Faulted);
    }

    [Fact]
    public void PriDevice_WithoutAFaultQueue_IsAnsweredInvalid_AndTheDmaFails()
    {
        var s = new Sim(new PlatformSpec { Devices = [new DeviceSpec(Sim.Dev3, 3, Ats: true, PageRequests: true)] });
        s.Kernel.ListenForPageRequests();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Attach(s.Bind(Sim.Dev3), ioas, out _));
        var r = s.Dma(Sim.Dev3, 0x4000_0000, Access.Read);
        Assert.True(r.Faulted);
        Assert.Equal(FaultReason.PageResponseFailure, r.Reason);
        Assert.Equal(0, s.Kernel.PageRequestsToUser);
    }

    [Theory]
    [InlineData(0u, 24u)]
    [InlineData(8u, 24u)]
    [InlineData(64u, 24u)]
    public void GetHwInfo_CopiesMinLength_ZeroFillsTheRest_AndReportsTheKernelLength(uint userLen, uint kernelLen)
    {
        var s = new Sim();
        var dev = s.Bind(Sim.Dev3);
        var buf = Enumerable.Repeat((byte)0xAA, (int)userLen).ToArray();
        var c = new IommuHwInfo { dev_id = dev.Id, data_len = userLen, data = buf };
        Assert.Equal(Errno.OK, s.Ctx.GetHwInfo(c));
        Assert.Equal(kernelLen, c.data_len);
        Assert.Equal(IommuHwInfoType.INTEL_VTD, c.out_data_type);
        Assert.Equal(20, c.out_max_pasid_log2);
        Assert.Equal(IommuHwCap.DIRTY_TRACKING | IommuHwCap.PCI_PASID_EXEC | IommuHwCap.PCI_PASID_PRIV, c.out_capabilities);
        if (userLen > kernelLen) Assert.All(buf.Skip((int)kernelLen), b => Assert.Equal(0, b));
        if (userLen >= 16) Assert.NotEqual(0ul, BitConverter.ToUInt64(buf, 8));   // cap_reg
        Assert.Equal(Errno.ENOENT, s.Ctx.GetHwInfo(new IommuHwInfo { dev_id = 42 }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.GetHwInfo(new IommuHwInfo { dev_id = dev.Id, flags = 2 }));   // unknown flag
    }

    /// <summary>iommufd_viommu_alloc_ioctl on VT-d: flags or type DEFAULT are EOPNOTSUPP before anything else; then the
    /// device (ENOENT); then intel_iommu_ops has no get_viommu_size/viommu_init, so every type is EOPNOTSUPP. With no
    /// vIOMMU, VDEVICE_ALLOC, VEVENTQ_ALLOC and HW_QUEUE_ALLOC find none (ENOENT), and HWPT_INVALIDATE on a paging
    /// HWPT is EINVAL (iommufd_hwpt_invalidate: neither nested nor a vIOMMU).</summary>
    [Fact]
    public void Vtd_has_no_viommu_ops()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var d3 = s.Bind(Sim.Dev3);
        var parent = new IommuHwptAlloc { dev_id = d3.Id, pt_id = ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(parent));
        uint arm = (uint)IommuViommuType.ARM_SMMUV3;

        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.ViommuAlloc(new IommuViommuAlloc { flags = 1, type = arm, dev_id = 99, hwpt_id = parent.out_hwpt_id }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.ViommuAlloc(new IommuViommuAlloc { type = (uint)IommuViommuType.DEFAULT, dev_id = 99, hwpt_id = parent.out_hwpt_id }));
        Assert.Equal(Errno.ENOENT, s.Ctx.ViommuAlloc(new IommuViommuAlloc { type = arm, dev_id = 99, hwpt_id = parent.out_hwpt_id }));
        foreach (uint type in new[] { arm, (uint)IommuViommuType.TEGRA241_CMDQV, 0x100u })
            Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.ViommuAlloc(new IommuViommuAlloc { type = type, dev_id = d3.Id, hwpt_id = parent.out_hwpt_id }));
        Assert.Equal(Errno.ENOENT, s.Ctx.VdeviceAlloc(new IommuVdeviceAlloc { viommu_id = parent.out_hwpt_id, dev_id = d3.Id, virt_id = 1 }));
        Assert.Equal(Errno.ENOENT, s.Ctx.VeventqAlloc(new IommuVeventqAlloc { viommu_id = parent.out_hwpt_id, type = 1, veventq_depth = 4 }));
        Assert.Equal(Errno.ENOENT, s.Ctx.HwQueueAlloc(new IommuHwQueueAlloc { viommu_id = parent.out_hwpt_id, type = 1, length = 0x1000 }));
        Assert.Equal(Errno.EINVAL, s.Ctx.HwptInvalidate(new IommuHwptInvalidate { hwpt_id = parent.out_hwpt_id }));
    }
}
