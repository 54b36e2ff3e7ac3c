using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// The run-time mapping targets go through the kernel's objects: the DMA-API domain (iommu_unmap with an
/// iommu_iotlb_gather), the guest's stage-1 table with IOMMU_HWPT_INVALIDATE (intel_nested_cache_invalidate_user),
/// and the VMM's shadow IOAS (iommufd_ioas_map / iommufd_ioas_unmap).
/// </summary>
public class MappingTargetTests
{

    private static readonly DmaApiCosts Strict = DmaApiCosts.FromNs("strict", 200, 150, 100, 1500, 400, 4, 50);
    private static readonly DmaApiCosts Lazy = DmaApiCosts.FromNs("lazy", 200, 150, 100, 1500, 400, 4, 50);

    [Fact]
    public void DomainUnmap_KeepsFreedTablePagesUntilTheFlush_AndDropsTheLeafHintWhenItFreedAny()
    {
        // intel_iommu_tlb_sync: ih = list_empty(&gather->freelist); iommu_put_pages_list runs after the flush.
        var s = new Sim();
        var d = s.Kernel.Vtd!.AllocPagingDomain(nestParent: false, dirtyTracking: false);
        ulong pa = s.Port.Frames.AllocateContiguous(4UL << 20, 2UL << 20);
        d.Map(0x4000_0000, pa, 2UL << 20, Access.ReadWrite, allowLargePages: false); // fills one last-level table
        long tables = s.Port.Frames.TableFramesInUse;
        var flush = new List<InvalidationDescriptor>();
        var freed = new List<ulong>();

        using (d.Driver.DeferFlushes(flush, freed)) d.Unmap(0x4000_0000, 0x1000, Uapi.Driver.InvalidationHint.Kernel);
        Assert.Empty(freed);
        Assert.True(flush[0].LeafOnly); // nothing freed: IH may be set

        flush.Clear();
        using (d.Driver.DeferFlushes(flush, freed)) d.Unmap(0x4000_0000, 2UL << 20, Uapi.Driver.InvalidationHint.Kernel);
        Assert.Single(freed);
        Assert.False(flush[0].LeafOnly); // a table went: the paging-structure caches must drop it too
        Assert.Equal(tables, s.Port.Frames.TableFramesInUse); // still allocated: the caches may point at it
        d.Driver.PutTablePages(freed);
        Assert.Equal(tables - 1, s.Port.Frames.TableFramesInUse);
        Assert.Empty(freed);
    }

    [Theory]
    [InlineData("strict")]
    [InlineData("lazy")]
    public void RuntimeUnmap_FreesTablePagesOnlyAfterTheFlushCompletes(string mode)
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec());
        var sys = SystemProvisioner.Provision(hw, new ProvisionRequest("single-stage", new StageSpec(), new StageSpec(), [],
            [new DeviceProvision(Sim.Dev3, "kernel", [])]));
        var dev = hw.Device(Sim.Dev3)!;
        ulong pool = hw.Frames.AllocateContiguous(4UL << 20, 2UL << 20);
        var api = new KernelDmaApi(sys.Kernel.Port, mode == "lazy" ? Lazy : Strict);
        api.Register(dev, MappingTargets.ForKernelDomain((Uapi.Driver.VtdPagingDomain)sys.Devices[Sim.Dev3].KernelDomain!,
            new MappingWindow(pool, 4UL << 20, 0x7000_0000_0000, 1UL << 36)));
        var c = new DmaApiTestClient();
        c.Call(hw, () => api.MapAt(dev, 0x7000_0020_0000, 2 << 20, Access.ReadWrite, c, 1));
        long tables = hw.Frames.TableFramesInUse;
        long flushes = api.Stats.Flushes;
        c.Done = false;
        api.UnmapAt(dev, 0x7000_0020_0000, 2 << 20, c, 1);
        // Step event by event: while the unmap's flush is outstanding the table page stays allocated.
        while (!c.Done && hw.Scheduler.Step())
            if (!c.Done && hw.Frames.TableFramesInUse != tables) Assert.Fail("table page freed before the unmap's flush completed");
        long freedAtReturn = tables - hw.Frames.TableFramesInUse;
        if (mode == "strict") Assert.Equal(1, freedAtReturn); // the wait has completed when the unmap returns
        else
        {
            Assert.Equal(0, freedAtReturn); // lazy: on the flush queue's freelist
            hw.RunUntil(() => api.Stats.Flushes > flushes && hw.Iommu.Invalidation.Idle);
            Assert.Equal(tables - 1, hw.Frames.TableFramesInUse);
        }
    }

    [Theory]
    [InlineData("iommufd")]
    [InlineData("vfio-container")]
    public void TracedUnmaps_OnAVfioProgram_CutAreasAndStillFlushAnUntracedRange(string via)
    {
        // A replayed kernel trace may unmap part of a mapping (__iommu_unmap) or a range mapped before tracing began.
        var hw = PlatformPort.CreatePlatform(new PlatformSpec());
        var sys = SystemProvisioner.Provision(hw, new ProvisionRequest("single-stage", new StageSpec(), new StageSpec(), [],
            [new DeviceProvision(Sim.Dev3, via, [])]));
        var (dev, pd) = (hw.Device(Sim.Dev3)!, sys.Devices[Sim.Dev3]);
        var iopt = ((Ioas)pd.Context!.Lookup(pd.IoasId)!).Iopt;
        var api = new KernelDmaApi(sys.Kernel.Port, Strict);
        api.Register(dev, MappingTargets.ForIoas(pd.Context, pd.IoasId, pd.HwptId, via == "vfio-container", 4UL << 20, 0x7000_0000_0000, 1UL << 36, 0));
        var c = new DmaApiTestClient();
        const ulong At = 0x7000_0010_0000;
        c.Call(hw, () => api.MapAt(dev, At, 0x2000, Access.ReadWrite, c, 1));
        c.Call(hw, () => api.UnmapAt(dev, At, 0x1000, c, 1));
        // iopt_cut_iova split the area: the first page is gone, the second still mapped.
        Assert.Null(iopt.FirstArea(At, At));
        Assert.Equal(At + 0x1000, iopt.FirstArea(At + 0x1000, At + 0x1000)!.Iova);
        Assert.True(hw.ExecuteDma(dev.RequesterId, null, At, 64, Access.Write).Faulted);
        Assert.False(hw.ExecuteDma(dev.RequesterId, null, At + 0x1000, 64, Access.Write).Faulted);

        long iotlb = hw.Iommu.Invalidation.DescriptorsByType(InvalidationType.Iotlb);
        c.Call(hw, () => api.UnmapAt(dev, 0x7000_0800_0000, 0x1000, c, 1));
        Assert.Equal(iotlb + 1, hw.Iommu.Invalidation.DescriptorsByType(InvalidationType.Iotlb));
        Assert.Single(iopt.Areas);
    }

    private static (Platform Hw, ProvisionedSystem Sys, DmaEngine Dev, ProvisionedDevice Pd) Virtualized(string design)
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec());
        var sys = SystemProvisioner.Provision(hw, new ProvisionRequest(design, new StageSpec(), new StageSpec(), [new VmSpec("vm0", 256UL << 20)],
            [new DeviceProvision(Sim.Dev3, "iommufd", [], "vm0")]));
        return (hw, sys, hw.Device(Sim.Dev3)!, sys.Devices[Sim.Dev3]);
    }

    [Fact]
    public void Nested_GuestMapsInItsStage1Table_AndItsTrappedInvalidationGoesThroughHwptInvalidate()
    {
        var (hw, sys, dev, pd) = Virtualized("nested");
        ulong poolGpa = 64UL << 20;
        var target = MappingTargets.ForGuestStage1(pd.Context!, pd.HwptId, pd.Table!, new MappingWindow(poolGpa, 16UL << 20, 0x7000_0000_0000, 1UL << 36));
        var api = new KernelDmaApi(sys.Kernel.Port, Strict);
        api.Register(dev, target);
        var c = new DmaApiTestClient();
        ulong iova = c.Call(hw, () => api.Map(dev, 2048, Access.ReadWrite, c, 1));
        Assert.True(pd.Table!.TryTranslate(iova, out ulong gpa, out _, out _));
        Assert.Equal(poolGpa, gpa);
        var r = hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write);
        Assert.False(r.Faulted);
        Assert.Equal(pd.Vm!.GpaToHpa(gpa), r.PhysicalAddress);

        long flushes = sys.Kernel.Vtd!.FlushCount;
        c.Call(hw, () => api.Unmap(dev, iova, 2048, c, 1));
        Assert.Equal(flushes + 1, sys.Kernel.Vtd!.FlushCount); // one HWPT_INVALIDATE entry, flushed by the driver
        Assert.False(pd.Table.TryTranslate(iova, out _, out _, out _));
        Assert.True(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
    }

    [Fact]
    public void Shadow_GuestTableAndTheVmmsShadowIoasChangeTogether()
    {
        var (hw, sys, dev, pd) = Virtualized("shadow");
        var ioas = ((Ioas)pd.Context!.Lookup(pd.IoasId)!).Iopt;
        var guest = pd.Vm!.PageTable(pd.GuestPgtbl)!;
        int areas = ioas.Areas.Count;
        ulong poolGpa = 64UL << 20;
        var target = MappingTargets.ForShadow(pd.Context, pd.IoasId, pd.HwptId, pd.Vm, guest, poolGpa, 16UL << 20, 0x7000_0000_0000, 1UL << 36, 0, 0);
        var api = new KernelDmaApi(sys.Kernel.Port, Strict);
        api.Register(dev, target);
        var c = new DmaApiTestClient();
        ulong iova = c.Call(hw, () => api.Map(dev, 2048, Access.ReadWrite, c, 1));
        Assert.True(guest.TryTranslate(iova, out ulong gpa, out _, out _));
        Assert.Equal(poolGpa, gpa);
        var area = ioas.FirstArea(iova, iova);
        Assert.NotNull(area);
        Assert.Equal(pd.Vm.RamUserVa + gpa, area!.SourceAddress);
        Assert.Equal(pd.Vm.GpaToHpa(gpa), hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).PhysicalAddress);

        c.Call(hw, () => api.Unmap(dev, iova, 2048, c, 1));
        Assert.False(guest.TryTranslate(iova, out _, out _, out _));
        Assert.Null(ioas.FirstArea(iova, iova));
        Assert.Equal(areas, ioas.Areas.Count);
        Assert.True(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
    }
}
