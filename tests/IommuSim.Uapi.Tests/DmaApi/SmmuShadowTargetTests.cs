using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// Shadow on SMMUv3: the VMM mirrors the guest's run-time maps into its shadow IOAS (iommufd_ioas_map /
/// iommufd_ioas_unmap), whose paging domain is an arm-smmu-v3 stage-1 domain; an unmap's flush is the driver's
/// (arm_smmu_iotlb_sync → arm_smmu_tlb_inv_range_domain: TLBI_NH_VA of the domain's ASID) gathered through the
/// neutral gather and closed with a CMD_SYNC that the DMA API waits for in simulated time.
/// </summary>
public class SmmuShadowTargetTests
{

    private static (Platform Hw, KernelDmaApi Api, IommuSim.Hardware.Devices.DmaEngine Dev, ProvisionedDevice Pd) Shadow(string mode)
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec(), new IommuOptions { Architecture = "smmuv3" });
        var sys = SystemProvisioner.Provision(hw, new ProvisionRequest("shadow", new StageSpec(), new StageSpec(), [new VmSpec("vm0", 256UL << 20)],
            [new DeviceProvision(Sim.Dev3, "iommufd", [], "vm0")]));
        var pd = sys.Devices[Sim.Dev3];
        var dev = hw.Device(Sim.Dev3)!;
        var target = MappingTargets.ForShadow(pd.Context!, pd.IoasId, pd.HwptId, pd.Vm!, pd.Vm!.PageTable(pd.GuestPgtbl)!, 64UL << 20, 16UL << 20,
            0x7000_0000_0000, 1UL << 36, 0, 0);
        var api = new KernelDmaApi(sys.Kernel.Port, DmaApiCosts.FromNs(mode, 200, 150, 100, 1500, 400, 4, 50));
        api.Register(dev, target);
        return (hw, api, dev, pd);
    }

    [Fact]
    public void Strict_unmap_sends_tlbi_and_sync_and_the_next_dma_faults()
    {
        var (hw, api, dev, pd) = Shadow("strict");
        var smmu = hw.Smmu!;
        var c = new DmaApiTestClient();
        ulong iova = c.Call(hw, () => api.Map(dev, 2048, Access.ReadWrite, c, 1));
        var first = hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write);
        Assert.False(first.Faulted);
        Assert.Equal(pd.Vm!.GpaToHpa(64UL << 20), first.PhysicalAddress);
        Assert.False(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted); // now a TLB hit

        var q = smmu.CommandQueue;
        uint prod = q.Prod;
        c.Call(hw, () => api.Unmap(dev, iova, 2048, c, 1));
        var sent = new List<SmmuCommand>();
        for (uint i = prod; i != q.Prod; i = (i + 1) & ((q.Entries << 1) - 1))
        {
            ulong slot = q.Base + 16UL * (i & (q.Entries - 1));
            sent.Add(SmmuCommand.Decode(hw.Memory.ReadU64(slot), hw.Memory.ReadU64(slot + 8)));
        }
        Assert.Equal([SmmuOpcode.TlbiNhVa, SmmuOpcode.CmdSync], sent.Select(s => s.Opcode));
        Assert.Equal(iova & ~0xFFFUL, sent[0].Address);
        Assert.Equal(pd.DomainId, sent[0].Asid);
        Assert.True(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
        Assert.Equal(0, smmu.StaleTranslationsUsed);
    }

    [Fact]
    public void Lazy_unmap_leaves_a_stale_entry_until_the_flush_queue_invalidates_the_asid()
    {
        var (hw, api, dev, _) = Shadow("lazy");
        var smmu = hw.Smmu!;
        var c = new DmaApiTestClient();
        ulong iova = c.Call(hw, () => api.Map(dev, 2048, Access.ReadWrite, c, 1));
        Assert.False(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
        c.Call(hw, () => api.Unmap(dev, iova, 2048, c, 1));
        Assert.False(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted); // the stale TLB entry
        Assert.Equal(1, smmu.StaleTranslationsUsed);
        long asidFlushes = smmu.Tlb.InvalidatedEntries;
        hw.Scheduler.Run(untilTime: hw.Scheduler.Now + 1_000_000_000); // past the flush timeout: TLBI_NH_ASID + CMD_SYNC
        Assert.True(smmu.Tlb.InvalidatedEntries > asidFlushes);
        Assert.True(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
    }
}
