using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Designs;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.Designs;

/// <summary>
/// nested and shadow on iommu.architecture = smmuv3, provisioned as a VMM does on Arm
/// (iommufd_viommu_alloc_ioctl, iommufd_vdevice_alloc_ioctl, iommufd_viommu_alloc_hwpt_nested →
/// arm_vsmmu_alloc_domain_nested; shadow: iopt_map_user_pages into an arm_smmu_domain): a DMA at every
/// 4 KiB page of every region, through the SMMU, reaches the guest RAM page behind it.
/// </summary>
public class SmmuDesignProvisioningTests
{
    private static readonly DmaRegion[] Regions = [new(0x1_0000_0000, 0x40_0000), new(0x2_0000_0000, 0x3000)];

    private static (IommuSim.Hardware.Platform Hw, ProvisionedSystem Sys) Provision(string design, PageSize s1Leaf = PageSize.Size4K, bool hwQueue = false)
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec(), new IommuOptions { Architecture = "smmuv3", Smmu = { Tegra241Cmdqv = hwQueue } });
        var req = new ProvisionRequest(design, new StageSpec(4, s1Leaf), new StageSpec(4, PageSize.Size4K),
            [new VmSpec("vm0", 256UL << 20), new VmSpec("vm1", 128UL << 20)],
            [new DeviceProvision(Sim.Dev3, "iommufd", Regions, "vm0", null), new DeviceProvision(Sim.Dev4, "iommufd", Regions, "vm1")], hwQueue);
        return (hw, SystemProvisioner.Provision(hw, req));
    }

    [Theory]
    [InlineData("nested")]
    [InlineData("shadow")]
    public void Every_page_of_every_region_reaches_the_guest_ram_behind_it(string design)
    {
        var (hw, sys) = Provision(design);
        Assert.Equal(2, sys.Devices.Count);
        foreach (var (rid, pd) in sys.Devices)
            foreach (var r in pd.Regions)
            {
                for (ulong off = 0; off < r.Bytes; off += 0x1000)
                {
                    var dma = hw.ExecuteDma(rid, null, r.Iova + off + 0x40, 64, Access.Write);
                    Assert.False(dma.Faulted, $"{design} {rid} iova {r.Iova + off:x}: {dma.Reason}");
                    Assert.Equal(r.HostPhysical + off + 0x40, dma.PhysicalAddress);
                }
            }
    }

    [Fact]
    public void Nested_builds_a_viommu_a_vdevice_and_a_nested_hwpt_from_the_guest_ste_per_vm()
    {
        var (hw, sys) = Provision("nested");
        var ctx = sys.Devices.Values.First().Context!;
        var viommus = sys.Devices.Values.Select(pd => ((Iommufd.HwptNested)ctx.Lookup(pd.HwptId)!).Viommu!.Id).Distinct().ToList();
        Assert.Equal(2, viommus.Count); // one vIOMMU per VM, each over its VM's NEST_PARENT stage 2
        foreach (var pd in sys.Devices.Values)
        {
            var nested = Assert.IsType<Iommufd.HwptNested>(ctx.Lookup(pd.HwptId));
            Assert.IsType<ArmSmmuNestedDomain>(nested.NestedDomain);
            Assert.NotNull(pd.SmmuGuest);
            Assert.Equal(pd.SmmuGuest!.Guest.Asid, pd.DomainId);
            Assert.Equal(0u, pd.SmmuGuest.HwQueueId); // trapped: an ARM_SMMUV3 vIOMMU, no hardware queue
            Assert.Null(pd.Table); // the guest's table is a VMSAv8-64 one, not an x86 table
        }
        // A page the guest did not map faults (stage 1: the guest's, not the VMM's).
        var dev = sys.Devices.Keys.First();
        Assert.True(hw.ExecuteDma(dev, null, 0x3_0000_0000, 64, Access.Read).Faulted);
    }

    [Fact]
    public void Nested_with_2M_guest_leaves_reaches_the_same_pages()
    {
        var (hw, sys) = Provision("nested", PageSize.Size2M);
        foreach (var (rid, pd) in sys.Devices)
            foreach (var r in pd.Regions)
                Assert.Equal(r.HostPhysical + r.Bytes - 64, hw.ExecuteDma(rid, null, r.Iova + r.Bytes - 64, 64, Access.Write).PhysicalAddress);
    }

    [Fact]
    public void Nested_refuses_a_5_level_guest_stage1_naming_the_key()
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec(), new IommuOptions { Architecture = "smmuv3" });
        var req = new ProvisionRequest("nested", new StageSpec(5, PageSize.Size4K), new StageSpec(4, PageSize.Size4K),
            [new VmSpec("vm0", 256UL << 20)], [new DeviceProvision(Sim.Dev3, "iommufd", Regions, "vm0", null)]);
        var e = Assert.Throws<ArgumentException>(() => SystemProvisioner.Provision(hw, req));
        Assert.Contains("translation:stage1:levels = 5", e.Message);
    }

    /// <summary>translation.viommu.hwQueue: a TEGRA241_CMDQV vIOMMU per VM and one HW_QUEUE_ALLOC'd VCMDQ (index 0) in its RAM.</summary>
    [Fact]
    public void Nested_with_a_hardware_queue_allocates_a_cmdqv_viommu_and_a_vcmdq_per_vm()
    {
        var (hw, sys) = Provision("nested", hwQueue: true);
        var ctx = sys.Devices.Values.First().Context!;
        foreach (var (rid, pd) in sys.Devices)
        {
            var g = pd.SmmuGuest!;
            Assert.NotEqual(0u, g.HwQueueId);
            var q = Assert.IsType<Iommufd.HwQueue>(ctx.Lookup(g.HwQueueId));
            Assert.IsType<Tegra241Vcmdq>(q.DriverData);
            Assert.Equal(Iommufd.IommuViommuType.TEGRA241_CMDQV, ((Iommufd.Viommu)ctx.Lookup(g.ViommuId)!).ViommuType);
            var r = pd.Regions[0];
            Assert.Equal(r.HostPhysical + 0x40, hw.ExecuteDma(rid, null, r.Iova + 0x40, 64, Access.Read).PhysicalAddress);
        }
        Assert.Equal(2, sys.Devices.Values.Select(pd => pd.SmmuGuest!.HwQueueId).Distinct().Count());
    }

    private sealed class Waiter : IInvalidationWaiter
    {
        public long Cookie { get; private set; } = -1;
        public void OnInvalidationWaitDone(long cookie) => Cookie = cookie;
    }

    /// <summary>
    /// The run-time target of a nested SMMUv3 device: the guest maps a page in its stage 1 (no invalidation:
    /// arm_smmu_map_pages), DMA reaches it; the guest unmaps it and gathers one TLBI_NH_VA; until that reaches the SMMU
    /// (trapped: arm_vsmmu_cache_invalidate → the host queue; or the guest's VCMDQ) the TLB still translates, and once
    /// its CMD_SYNC completes in simulated time the DMA faults. The trapped path costs the VM exit and the ioctl.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_guest_unmap_is_stale_until_its_invalidation_completes(bool hwQueue)
    {
        var (hw, sys) = Provision("nested", hwQueue: hwQueue);
        var (rid, pd) = sys.Devices.OrderBy(kv => kv.Key.Value).First();
        var t = TranslationDesigns.Get("nested").MappingTarget(hw, null!, pd, new RunTimeCosts(1_500_000, 400_000, Driver.InvalidationHint.Never));
        Assert.Equal(hwQueue ? 0 : 1_900_000, t.InvalidateOverheadPs);
        Assert.Equal(pd.SmmuGuest!.Guest.Asid, t.DomainId);
        ulong iova = t.IovaBase, gpa = t.BufferBase;
        var gather = t.CreateGather();
        t.Map(iova, gpa, 0x1000, Access.ReadWrite, gather);
        Assert.Equal(0, gather.Count);
        var dma = hw.ExecuteDma(rid, null, iova + 0x40, 64, Access.Write);
        Assert.False(dma.Faulted, dma.Reason.ToString());
        Assert.Equal(pd.Vm!.GpaToHpa(gpa) + 0x40, dma.PhysicalAddress);

        t.Unmap(iova, 0x1000, gather, []);
        Assert.Equal(1, gather.Count);
        Assert.False(hw.ExecuteDma(rid, null, iova + 0x40, 64, Access.Write).Faulted); // the TLB still holds it
        var port = ((ArmSmmuV3Driver)sys.Kernel.Driver).Port;
        long mainBefore = port.Smmu.CommandQueue.Executed;
        var w = new Waiter();
        gather.Submit(w, 7);
        port.RunUntil(() => w.Cookie >= 0);
        Assert.Equal(7, w.Cookie);
        Assert.True(hw.ExecuteDma(rid, null, iova + 0x40, 64, Access.Write).Faulted);
        Assert.Equal(hwQueue ? 0 : 2, port.Smmu.CommandQueue.Executed - mainBefore); // TLBI_NH_VA + CMD_SYNC on the host's queue when trapped
    }
}
