using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// The run-time DMA API flushes through the target's gather without knowing the IOMMU's command format
/// (iommu_iotlb_gather + iommu_iotlb_sync). On VT-d the gather holds invalidation descriptors (cache_tag_flush_range,
/// qi_submit_sync's wait); on SMMUv3 the commands of arm_smmu_tlb_inv_range_domain (TLBI_NH_VA) or, for a lazy
/// flush, arm_smmu_tlb_inv_context (TLBI_NH_ASID), closed by CMD_SYNC. Either way: after an unmap and its flush a
/// DMA to the IOVA faults; before a lazy flush the TLB may still translate it, and such hits are counted.
/// </summary>
public class NeutralFlushTests
{

    private static long Stale(Platform hw) => hw.Iommu.StaleTranslationsUsed + (hw.Smmu?.StaleTranslationsUsed ?? 0);

    [Theory]
    [InlineData("vtd", "strict", "kernel")]
    [InlineData("vtd", "strict", "iommufd")]
    [InlineData("vtd", "lazy", "kernel")]
    [InlineData("vtd", "lazy", "iommufd")]
    [InlineData("smmuv3", "strict", "kernel")]   // iommu_dma on a stage-1 domain: TLBI_NH_VA + CMD_SYNC per unmap
    [InlineData("smmuv3", "strict", "iommufd")]  // IOAS_UNMAP → iopt_area_unfill_domain → iommu_unmap + iotlb_sync
    [InlineData("smmuv3", "lazy", "kernel")]     // flush queue: TLBI_NH_ASID + CMD_SYNC (arm_smmu_tlb_inv_context)
    [InlineData("smmuv3", "lazy", "iommufd")]
    public void After_each_unmap_and_its_flush_a_dma_to_the_iova_faults(string arch, string mode, string via)
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec(), new IommuOptions { Architecture = arch });
        var sys = SystemProvisioner.Provision(hw, new ProvisionRequest("single-stage", new StageSpec(), new StageSpec(), [],
            [new DeviceProvision(Sim.Dev3, via, [])]));
        var (dev, pd) = (hw.Device(Sim.Dev3)!, sys.Devices[Sim.Dev3]);
        // A flush queue longer than the test's unmaps and a long timer: a lazy unmap stays unflushed until the timer.
        var api = new KernelDmaApi(sys.Kernel.Port, DmaApiCosts.FromNs(mode, 200, 150, 100, 1500, 400, 64, 20));
        IMappingTarget target = via == "kernel"
            ? MappingTargets.ForKernelDomain((IommuPagingDomain)pd.KernelDomain!,
                new MappingWindow(hw.Frames.AllocateContiguous(4UL << 20, 2UL << 20), 4UL << 20, 0x7000_0000_0000, 1UL << 36))
            : MappingTargets.ForIoas(pd.Context!, pd.IoasId, pd.HwptId, vfioContainer: false, 4UL << 20, 0x7000_0000_0000, 1UL << 36, 0);
        api.Register(dev, target);
        Assert.IsType(arch == "vtd" ? typeof(VtdIotlbGather) : typeof(SmmuIotlbGather), target.CreateGather());
        long tlbiVa0 = hw.Smmu?.CommandQueue.Executed ?? 0;

        var c = new DmaApiTestClient();
        for (int i = 0; i < 4; i++)
        {
            ulong iova = c.Call(hw, () => api.Map(dev, 4096, Access.ReadWrite, c, i));
            Assert.False(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted); // fills the IOTLB / TLB
            long stale = Stale(hw);
            long flushes = api.Stats.Flushes;
            c.Call(hw, () => api.Unmap(dev, iova, 4096, c, i));
            if (mode == "strict")
            {
                // The wait (wait descriptor / CMD_SYNC) completed before the unmap returned.
                Assert.True(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted, $"strict: 0x{iova:x} still translated");
                Assert.Equal(stale, Stale(hw));
            }
            else
            {
                // Unflushed: the cached translation is still used, and counted as stale.
                var r = hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write);
                Assert.False(r.Faulted, $"lazy: 0x{iova:x} faulted before the flush");
                Assert.Equal(stale + 1, Stale(hw));
                hw.RunUntil(() => api.Stats.Flushes > flushes);
                hw.RunUntil(() => false); // the flush's wait completes; nothing else is pending
                Assert.True(hw.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted, $"lazy: 0x{iova:x} translated after the flush");
                Assert.Equal(stale + 1, Stale(hw)); // a fault is not a stale hit
            }
        }
        Assert.Equal(4, mode == "strict" ? api.Stats.Unmaps : api.Stats.Flushes);
        if (arch == "smmuv3") Assert.True(hw.Smmu!.CommandQueue.Executed - tlbiVa0 >= 8); // a TLBI and a CMD_SYNC per flush
    }

    /// <summary>A full command queue: the gather waits for CONS in simulated time (no scheduler run inside the
    /// event) and writes what fits, the CMD_SYNC with the last piece (arm_smmu_cmdq_issue_cmdlist).</summary>
    [Fact]
    public void Smmu_gather_waits_for_room_in_a_full_command_queue()
    {
        var iommu = new IommuOptions { Architecture = "smmuv3" };
        iommu.Smmu.Queues.CommandQueueLog2 = 1; // two slots: one command and its CMD_SYNC at a time
        var hw = PlatformPort.CreatePlatform(new PlatformSpec(), iommu);
        var port = new PlatformSmmuPort(hw);
        var gather = new SmmuIotlbGather(port, 0, 1);
        var waiter = new Waiter();
        for (int i = 0; i < 3; i++) gather.Commands.Add(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Asid = 1, Address = 0x1000UL * (ulong)i, Pages = 1, Leaf = true });
        long executed = hw.Smmu!.CommandQueue.Executed;
        gather.Submit(waiter, 7);
        Assert.Equal(0, gather.Count);
        Assert.Equal(-1, waiter.Cookie);
        hw.RunUntil(() => waiter.Cookie >= 0);
        Assert.Equal(7, waiter.Cookie);
        Assert.Equal(4, hw.Smmu.CommandQueue.Executed - executed); // three TLBIs and one CMD_SYNC
    }

    private sealed class Waiter : IInvalidationWaiter
    {
        public long Cookie = -1;
        public void OnInvalidationWaitDone(long cookie) => Cookie = cookie;
    }
}
