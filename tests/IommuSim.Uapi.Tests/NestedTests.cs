using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vm;

namespace IommuSim.Uapi.Tests;

/// <summary>iommufd.md section 5: NEST_PARENT stage 2, VT-d stage-1 HWPTs, guest invalidation.</summary>
public class NestedTests
{
    private const ulong VmBytes = 0x1000_0000; // 256 MiB

    private sealed class Guest
    {
        public required Sim S;
        public required VirtualMachine Vm;
        public required uint Ioas;
        public required IommufdDevice Dev;
        public required uint Parent;
        public required ulong Pgtbl;
        public PageTable Table => Vm.PageTable(Pgtbl)!;
    }

    /// <summary>A VMM's nested setup through the uAPI; 4K leaves in both stages so every walk is full length.</summary>
    private static Guest Setup(IommuOptions? iommu = null, bool hugePages = false, int s1Levels = 4)
    {
        var s = new Sim(iommu: iommu);
        var vm = s.Process.CreateVm(VmBytes);
        uint ioas = s.IoasAlloc();
        if (!hugePages)
            Assert.Equal(Errno.OK, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.SET, object_id = ioas, val64 = 0 }));
        Assert.Equal(Errno.OK, s.Map(ioas, vm.RamUserVa, VmBytes, 0));
        var dev = s.Bind(Sim.Dev3);
        var parent = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(parent));
        ulong pgtbl = vm.AllocPageTable(s1Levels);
        return new Guest { S = s, Vm = vm, Ioas = ioas, Dev = dev, Parent = parent.out_hwpt_id, Pgtbl = pgtbl };
    }

    private static uint AllocNested(Guest g, uint addrWidth = 48, ulong flags = 0, uint hwptFlags = 0)
    {
        var c = new IommuHwptAlloc
        {
            dev_id = g.Dev.Id, pt_id = g.Parent, flags = hwptFlags, data_type = IommuHwptDataType.VTD_S1,
            data = new IommuHwptVtdS1 { pgtbl_addr = g.Pgtbl, addr_width = addrWidth, flags = flags },
        };
        Assert.Equal(Errno.OK, g.S.Ctx.HwptAlloc(c));
        return c.out_hwpt_id;
    }

    private static IommuOptions NoWalkCaches() => new() { WalkCaches = new WalkCacheOptions { Enabled = false } };

    [Fact]
    public void ColdNestedDma_4x4_Reads24TableEntries_WithWalkCachesOff()
    {
        var g = Setup(NoWalkCaches());
        g.Table.Map(0x4000_0000, 0x200000, 0x4000, Access.ReadWrite, PageSize.Size4K);
        uint nested = AllocNested(g);
        Assert.Equal(Errno.OK, g.S.Attach(g.Dev, nested, out _));

        var pe = g.S.Port.Tables.ReadPasidEntry(Sim.Dev3, 0);
        Assert.Equal(Pgtt.Nested, pe.Pgtt);
        Assert.Equal(g.Pgtbl, pe.FirstStageTable);
        Assert.Equal(4, pe.FirstStageLevels);
        Assert.Equal(4, pe.SecondStageLevels);

        var r = g.S.Dma(Sim.Dev3, 0x4000_0040, Access.Write);
        Assert.False(r.Faulted, r.Reason.ToString());
        Assert.Equal(24, r.WalkReads);                                // (4+1)(4+1)−1
        Assert.Equal(g.Vm.GpaToHpa(0x200040), r.PhysicalAddress);
    }

    [Fact]
    public void GuestUnmapWithoutInvalidation_LeavesAStaleIotlbEntry_HwptInvalidateRemovesIt()
    {
        var g = Setup();
        g.Table.Map(0x10_0000, 0x20_0000, 0x2000, Access.ReadWrite, PageSize.Size4K);
        uint nested = AllocNested(g);
        Assert.Equal(Errno.OK, g.S.Attach(g.Dev, nested, out _));
        Assert.False(g.S.Dma(Sim.Dev3, 0x10_0000).Faulted);

        g.Table.Unmap(0x10_0000, 0x1000);
        var stale = g.S.Dma(Sim.Dev3, 0x10_0000);
        Assert.False(stale.Faulted);                       // the IOTLB still holds the translation
        Assert.Equal(0, stale.WalkReads);

        var inv = new IommuHwptInvalidate
        {
            hwpt_id = nested, data_type = IommuHwptInvalidateDataType.VTD_S1, entry_len = 24, entry_num = 1,
            data = [new IommuHwptVtdS1Invalidate { addr = 0x10_0000, npages = 1 }],
        };
        Assert.Equal(Errno.OK, g.S.Ctx.HwptInvalidate(inv));
        Assert.Equal(1u, inv.entry_num);
        var after = g.S.Dma(Sim.Dev3, 0x10_0000);
        Assert.True(after.Faulted);
        Assert.Equal(FaultReason.FirstStageNotPresent, after.Reason);
        Assert.False(g.S.Dma(Sim.Dev3, 0x10_1000).Faulted);  // the neighbour is untouched
    }

    [Fact]
    public void Stage2Unmap_FlushesNestedChildren_Synchronously()
    {
        var g = Setup();
        g.Table.Map(0x10_0000, 0x20_0000, 0x1000, Access.ReadWrite, PageSize.Size4K);
        uint nested = AllocNested(g);
        Assert.Equal(Errno.OK, g.S.Attach(g.Dev, nested, out _));
        Assert.False(g.S.Dma(Sim.Dev3, 0x10_0000).Faulted);
        // The VMM removes guest RAM from stage 2 (e.g. memory hot-unplug): no stale use afterwards.
        Assert.Equal(Errno.OK, g.S.Unmap(g.Ioas, 0, VmBytes));
        var r = g.S.Dma(Sim.Dev3, 0x10_0000);
        Assert.True(r.Faulted);
        Assert.Equal(FaultReason.SecondStageNotPresent, r.Reason);
    }

    public static TheoryData<string, uint, string, Errno> AllocCases() => new()
    {
        { "nested flags other than FAULT_ID_VALID/PASID", IommuHwptAllocFlags.DIRTY_TRACKING, "parent", Errno.EOPNOTSUPP },
        { "parent not NEST_PARENT", 0, "plain", Errno.EINVAL },
        { "parent is nested", 0, "nested", Errno.EINVAL },
        { "parent missing", 0, "missing", Errno.EINVAL },
        { "parent is a device", 0, "device", Errno.EINVAL },
        { "ok", 0, "parent", Errno.OK },
        { "ok with PASID", IommuHwptAllocFlags.PASID, "parent", Errno.OK },
    };

    [Theory]
    [MemberData(nameof(AllocCases))]
    public void NestedAlloc_ParentRules(string name, uint flags, string parentKind, Errno expected)
    {
        var g = Setup();
        var plain = new IommuHwptAlloc { dev_id = g.Dev.Id, pt_id = g.Ioas };
        Assert.Equal(Errno.OK, g.S.Ctx.HwptAlloc(plain));
        uint nested = AllocNested(g);
        uint pt = parentKind switch { "parent" => g.Parent, "plain" => plain.out_hwpt_id, "nested" => nested, "device" => g.Dev.Id, _ => 99 };
        var c = new IommuHwptAlloc { dev_id = g.Dev.Id, pt_id = pt, flags = flags, data_type = IommuHwptDataType.VTD_S1, data = new IommuHwptVtdS1 { pgtbl_addr = g.Pgtbl, addr_width = 48 } };
        Assert.True(expected == g.S.Ctx.HwptAlloc(c), name);
    }

    [Theory]
    [InlineData(IommuHwptDataType.NONE, true, Errno.EINVAL)]      // NONE with data
    [InlineData(IommuHwptDataType.VTD_S1, false, Errno.EINVAL)]   // a type without data
    [InlineData(IommuHwptDataType.ARM_SMMUV3, true, Errno.EOPNOTSUPP)]
    public void HwptAlloc_DataTypeAndData(uint type, bool withData, Errno expected)
    {
        var g = Setup();
        var c = new IommuHwptAlloc { dev_id = g.Dev.Id, pt_id = g.Parent, data_type = type, data = withData ? new IommuHwptVtdS1 { addr_width = 48 } : null };
        Assert.Equal(expected, g.S.Ctx.HwptAlloc(c));
    }

    [Fact]
    public void HwptAlloc_OtherErrors()
    {
        var g = Setup();
        var ctx = g.S.Ctx;
        Assert.Equal(Errno.EOPNOTSUPP, ctx.HwptAlloc(new IommuHwptAlloc { dev_id = g.Dev.Id, pt_id = g.Ioas, flags = 0x100 }));
        Assert.Equal(Errno.ENOENT, ctx.HwptAlloc(new IommuHwptAlloc { dev_id = 77, pt_id = g.Ioas }));
        Assert.Equal(Errno.ENOENT, ctx.HwptAlloc(new IommuHwptAlloc { dev_id = g.Dev.Id, pt_id = g.Ioas, flags = IommuHwptAllocFlags.FAULT_ID_VALID, fault_id = 55 }));
        Assert.Equal(Errno.EOPNOTSUPP, ctx.HwptAlloc(new IommuHwptAlloc
        {
            dev_id = g.Dev.Id, pt_id = g.Parent, data_type = IommuHwptDataType.VTD_S1, data = new IommuHwptVtdS1 { addr_width = 48, flags = 8 },
        }));
        var noDirty = new Sim(new PlatformSpec { DirtyTracking = false });
        uint ioas = noDirty.IoasAlloc();
        Assert.Equal(Errno.EOPNOTSUPP, noDirty.Ctx.HwptAlloc(new IommuHwptAlloc { dev_id = noDirty.Bind(Sim.Dev3).Id, pt_id = ioas, flags = IommuHwptAllocFlags.DIRTY_TRACKING }));
    }

    [Theory]
    [InlineData(48u, 0ul, Errno.OK)]
    [InlineData(57u, 0ul, Errno.OK)]
    [InlineData(39u, 0ul, Errno.EINVAL)]
    [InlineData(52u, 0ul, Errno.EINVAL)]
    [InlineData(48u, 1ul, Errno.EINVAL)]   // SRE without supervisor-request support
    [InlineData(48u, 2ul, Errno.EINVAL)]   // EAFE without the extended accessed flag
    [InlineData(48u, 4ul, Errno.OK)]       // WPE
    public void NestedAttach_ChecksTheStage1Format(uint addrWidth, ulong flags, Errno expected)
    {
        var g = Setup();
        uint nested = AllocNested(g, addrWidth, flags);
        Assert.Equal(expected, g.S.Attach(g.Dev, nested, out _));
        Assert.Equal(expected == Errno.OK, g.S.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).Present);
    }

    [Fact]
    public void NestParent_CannotBeDestroyed_WhileNestedHwptsExist()
    {
        var g = Setup();
        uint a = AllocNested(g), b = AllocNested(g);
        Assert.Equal(Errno.EBUSY, g.S.Ctx.Destroy(new IommuDestroy { id = g.Parent }));
        Assert.Equal(Errno.OK, g.S.Ctx.Destroy(new IommuDestroy { id = a }));
        Assert.Equal(Errno.EBUSY, g.S.Ctx.Destroy(new IommuDestroy { id = g.Parent }));
        Assert.Equal(Errno.OK, g.S.Ctx.Destroy(new IommuDestroy { id = b }));
        Assert.Equal(Errno.OK, g.S.Ctx.Destroy(new IommuDestroy { id = g.Parent }));
    }

    public static TheoryData<string, IommuHwptVtdS1Invalidate[], Errno, uint> InvalidateCases() => new()
    {
        { "one page", [new() { addr = 0x1000, npages = 1 }], Errno.OK, 1 },
        { "everything", [new() { addr = 0, npages = ulong.MaxValue }], Errno.OK, 1 },
        { "leaf only", [new() { addr = 0x1000, npages = 4, flags = IommuVtdInvFlags.LEAF }], Errno.OK, 1 },
        { "unaligned addr", [new() { addr = 0x1001, npages = 1 }], Errno.EINVAL, 0 },
        { "U64_MAX with addr", [new() { addr = 0x1000, npages = ulong.MaxValue }], Errno.EINVAL, 0 },
        { "unknown flag", [new() { addr = 0x1000, npages = 1, flags = 2 }], Errno.EOPNOTSUPP, 0 },
        { "reserved set", [new() { addr = 0x1000, npages = 1, __reserved = 1 }], Errno.EOPNOTSUPP, 0 },
        { "stops at the first bad entry", [new() { addr = 0x1000, npages = 1 }, new() { addr = 0x2000, npages = 1 }, new() { addr = 3, npages = 1 }, new() { addr = 0x4000, npages = 1 }], Errno.EINVAL, 2 },
    };

    [Theory]
    [MemberData(nameof(InvalidateCases))]
    public void HwptInvalidate_Entries(string name, IommuHwptVtdS1Invalidate[] entries, Errno expected, uint handled)
    {
        var g = Setup();
        uint nested = AllocNested(g);
        Assert.Equal(Errno.OK, g.S.Attach(g.Dev, nested, out _));
        var c = new IommuHwptInvalidate { hwpt_id = nested, data_type = IommuHwptInvalidateDataType.VTD_S1, entry_len = 24, entry_num = (uint)entries.Length, data = entries };
        Assert.True(expected == g.S.Ctx.HwptInvalidate(c), name);
        Assert.Equal(handled, c.entry_num);
    }

    [Fact]
    public void HwptInvalidate_TargetAndArrayChecks()
    {
        var g = Setup();
        uint nested = AllocNested(g);
        var ctx = g.S.Ctx;
        // entry_num 0 is a probe.
        Assert.Equal(Errno.OK, ctx.HwptInvalidate(new IommuHwptInvalidate { hwpt_id = nested, data_type = IommuHwptInvalidateDataType.VTD_S1 }));
        Assert.Equal(Errno.EINVAL, ctx.HwptInvalidate(new IommuHwptInvalidate { hwpt_id = nested, entry_num = 1, entry_len = 24 }));
        Assert.Equal(Errno.EINVAL, ctx.HwptInvalidate(new IommuHwptInvalidate { hwpt_id = nested, entry_num = 1, entry_len = 0, data = [new()] }));
        // A paging HWPT is not a target (EINVAL), a missing id is ENOENT, a wrong data type EINVAL.
        Assert.Equal(Errno.EINVAL, ctx.HwptInvalidate(new IommuHwptInvalidate { hwpt_id = g.Parent, data_type = 0, entry_len = 24 }));
        Assert.Equal(Errno.ENOENT, ctx.HwptInvalidate(new IommuHwptInvalidate { hwpt_id = 99 }));
        Assert.Equal(Errno.EINVAL, ctx.HwptInvalidate(new IommuHwptInvalidate { hwpt_id = nested, data_type = IommuHwptInvalidateDataType.VIOMMU_ARM_SMMUV3 }));
    }

    [Fact]
    public void SeveralNestedHwpts_ShareOneParent_AndEachGetsItsOwnDomainId()
    {
        var g = Setup();
        uint a = AllocNested(g), b = AllocNested(g);
        var da = ((HwptNested)g.S.Ctx.Lookup(a)!).NestedDomain!;
        var db = ((HwptNested)g.S.Ctx.Lookup(b)!).NestedDomain!;
        Assert.NotEqual(da.DomainId, db.DomainId);
        Assert.Same(da.ParentDomain, db.ParentDomain);
        Assert.Equal(Errno.OK, g.S.Attach(g.Dev, a, out _));
        uint pt = b;
        Assert.Equal(Errno.OK, g.S.Ctx.DeviceReplace(g.Dev, 0, ref pt));
        Assert.Equal(db.DomainId, g.S.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).DomainId);
    }

    [Fact]
    public void DirtyTrackingOnTheNestParent_RecordsGuestDmaWrites_ByGpa()
    {
        // Live migration of a VM with a nested device: the VMM tracks dirty guest RAM on stage 2.
        var s = new Sim();
        var vm = s.Process.CreateVm(VmBytes);
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.SET, object_id = ioas, val64 = 0 }));
        Assert.Equal(Errno.OK, s.Map(ioas, vm.RamUserVa, VmBytes, 0));
        var dev = s.Bind(Sim.Dev3);
        var parent = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.NEST_PARENT | IommuHwptAllocFlags.DIRTY_TRACKING };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(parent));
        ulong pgtbl = vm.AllocPageTable(4);
        vm.PageTable(pgtbl)!.Map(0x10_0000, 0x30_0000, 0x2000, Access.ReadWrite, PageSize.Size4K);
        var nested = new IommuHwptAlloc
        {
            dev_id = dev.Id, pt_id = parent.out_hwpt_id, data_type = IommuHwptDataType.VTD_S1,
            data = new IommuHwptVtdS1 { pgtbl_addr = pgtbl, addr_width = 48 },
        };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(nested));
        Assert.Equal(Errno.OK, s.Attach(dev, nested.out_hwpt_id, out _));
        Assert.Equal(Errno.OK, s.Ctx.HwptSetDirtyTracking(new IommuHwptSetDirtyTracking { hwpt_id = parent.out_hwpt_id, flags = IommuHwptSetDirtyTrackingFlags.ENABLE }));
        Assert.True(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).DirtyTracking);   // the nested entry got SLADE too

        Assert.False(s.Dma(Sim.Dev3, 0x10_1000, Access.Write).Faulted);
        Assert.False(s.Dma(Sim.Dev3, 0x10_0000, Access.Read).Faulted);
        var bitmap = new IommuHwptGetDirtyBitmap { hwpt_id = parent.out_hwpt_id, iova = 0x30_0000, length = 0x10000, page_size = 0x1000 };
        Assert.Equal(Errno.OK, s.Ctx.HwptGetDirtyBitmap(bitmap));
        Assert.Equal(1ul << 1, bitmap.data[0]);                 // GPA 0x301000 only
    }

    [Fact]
    public void FiveLevelStage1_Walks30Reads_WithWalkCachesOff()
    {
        var g = Setup(NoWalkCaches(), s1Levels: 5);
        g.Table.Map(0x4000_0000, 0x200000, 0x1000, Access.ReadWrite, PageSize.Size4K);
        uint nested = AllocNested(g, addrWidth: 57);
        Assert.Equal(Errno.OK, g.S.Attach(g.Dev, nested, out _));
        var r = g.S.Dma(Sim.Dev3, 0x4000_0000);
        Assert.False(r.Faulted, r.Reason.ToString());
        Assert.Equal((5 + 1) * (4 + 1) - 1, r.WalkReads);
    }
}
