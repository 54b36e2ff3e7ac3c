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
}
