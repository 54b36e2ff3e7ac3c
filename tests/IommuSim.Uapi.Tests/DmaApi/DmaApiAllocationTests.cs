using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// The run-time path through the kernel's domain allocates nothing per call once its pools have grown: the port's
/// pending waits are a list of structs, the driver's batch and the mapper's gather lists are reused, the deferral
/// scope is a struct. Whatever the second half of a run allocates stays far below one object per call.
/// </summary>
public class DmaApiAllocationTests
{
    /// <summary>Closed loop: map a buffer, unmap it as soon as it is mapped, repeat.</summary>
    private sealed class Loop(KernelDmaApi api, DmaEngine dev) : IDmaApiClient
    {
        public long Calls;
        public void Start() => api.Map(dev, 2048, Access.ReadWrite, this, 0);
        public void OnMapped(long tag, ulong iova) { Calls++; api.Unmap(dev, iova, 2048, this, 0); }
        public void OnUnmapped(long tag) { Calls++; api.Map(dev, 2048, Access.ReadWrite, this, 0); }
    }

    [Theory]
    [InlineData("strict", "vtd")]
    [InlineData("lazy", "vtd")]
    [InlineData("strict", "smmuv3")] // the SMMU gather: reused command lists, one cached CMD_SYNC callback
    [InlineData("lazy", "smmuv3")]
    public void KernelDomainMapUnmap_SteadyState_AllocatesNothingPerCall(string mode, string arch)
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec(), new IommuSim.Hardware.Iommu.IommuOptions { Architecture = arch });
        var sys = SystemProvisioner.Provision(hw, new ProvisionRequest("single-stage", new StageSpec(), new StageSpec(), [],
            [new DeviceProvision(Sim.Dev3, "kernel", [])]));
        var dev = hw.Device(Sim.Dev3)!;
        ulong pool = hw.Frames.AllocateContiguous(4UL << 20, 2UL << 20);
        var api = new KernelDmaApi(sys.Kernel.Port, DmaApiCosts.FromNs(mode, 200, 150, 100, 1500, 400, 32, 50));
        api.Register(dev, MappingTargets.ForKernelDomain((Uapi.Driver.IommuPagingDomain)sys.Devices[Sim.Dev3].KernelDomain!,
            new MappingWindow(pool, 4UL << 20, 0x7000_0000_0000, 1UL << 36)));
        var loop = new Loop(api, dev);
        loop.Start();
        hw.Scheduler.Run(untilTime: 2_000_000_000); // 2 ms: pools, lists and the IOVA allocator reach their size
        long calls = loop.Calls;
        long before = GC.GetAllocatedBytesForCurrentThread();
        hw.Scheduler.Run(untilTime: 6_000_000_000);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        calls = loop.Calls - calls;
        Assert.True(calls > 1000, $"{calls} calls");
        Assert.True(bytes < 4 * calls, $"{bytes} bytes allocated for {calls} map/unmap calls");
    }

    /// <summary>
    /// Nested per-request mapping on SMMUv3, the guest's unmaps invalidated (a) trapped: TLBI_NH_VA + CMD_SYNC → VM exit →
    /// IOMMU_HWPT_INVALIDATE on the vIOMMU → arm_vsmmu_cache_invalidate (reused copy and batch buffers, one cached vSID
    /// lookup delegate) → the host queue through the gather; (b) through the guest's own VCMDQ (Tegra241 CMDQV).
    /// Neither allocates per unmap once warm; with and without range invalidation (RIL changes the guest's commands).
    /// </summary>
    [Theory]
    [InlineData("strict", false, true)]
    [InlineData("strict", false, false)]
    [InlineData("lazy", false, true)]
    [InlineData("strict", true, true)]
    [InlineData("lazy", true, true)]
    public void NestedSmmuGuestMapUnmap_TrappedOrVcmdq_AllocatesNothingPerCall(string mode, bool hwQueue, bool ril)
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec(), new IommuSim.Hardware.Iommu.IommuOptions
        {
            Architecture = "smmuv3", Smmu = { Tegra241Cmdqv = hwQueue, RangeInvalidation = ril },
        });
        var sys = SystemProvisioner.Provision(hw, new ProvisionRequest("nested", new StageSpec(), new StageSpec(), [new VmSpec("vm0", 256UL << 20)],
            [new DeviceProvision(Sim.Dev3, "iommufd", [], "vm0")], ViommuHwQueue: hwQueue));
        var dev = hw.Device(Sim.Dev3)!;
        var pd = sys.Devices[Sim.Dev3];
        var target = IommuSim.Uapi.Designs.TranslationDesigns.Nested.MappingTarget(hw, dev, pd, new IommuSim.Uapi.Designs.RunTimeCosts(1_500_000, 400_000, IommuSim.Uapi.Driver.InvalidationHint.Never));
        Assert.IsType<SmmuGuestStage1Target>(target);
        var api = new KernelDmaApi(sys.Kernel.Port, DmaApiCosts.FromNs(mode, 200, 150, 100, 1500, 400, 32, 50));
        api.Register(dev, target);
        var loop = new Loop(api, dev);
        loop.Start();
        hw.Scheduler.Run(untilTime: 2_000_000_000);
        long calls = loop.Calls;
        long before = GC.GetAllocatedBytesForCurrentThread();
        hw.Scheduler.Run(untilTime: 6_000_000_000);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        calls = loop.Calls - calls;
        Assert.True(calls > 500, $"{calls} calls");
        Assert.True(bytes < 4 * calls, $"{bytes} bytes allocated for {calls} map/unmap calls");
        if (!hwQueue && mode == "strict")
            Assert.True(hw.Smmu!.CommandQueue.Syncs > calls / 4); // the trapped path reached the host's main queue
    }
}
