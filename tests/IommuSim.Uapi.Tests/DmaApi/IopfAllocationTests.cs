using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Pcie;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// The I/O page-fault path allocates nothing per fault once its queues have grown, on either architecture: the
/// hardware queues are records in simulated memory, the driver's port reads them into structs (intel_prq_report;
/// arm_smmu_priq_thread), the handler's pending queue and the response (a page group response descriptor, or a
/// CMD_PRI_RESP through arm_smmu_page_response) are reused. What a fault maps may grow the page tables (a new leaf
/// table every 512 pages), nothing else.
/// </summary>
public class IopfAllocationTests
{
    private const ulong Window = 0x2_0000_0000;

    /// <summary>Closed loop: one 64 B write to each next 4 KiB page of the window, each of which faults once.</summary>
    private sealed class NextPage(DmaEngine dev) : IDmaClient
    {
        private ulong _page;
        public long Done;
        public void Issue()
        {
            var r = dev.Rent();
            r.Iova = Window + (_page++ << 12);
            r.Bytes = 64;
            r.IsWrite = true;
            r.Measured = false;
            dev.Issue(r);
        }

        public void OnDmaComplete(DmaEngine device, DmaRequest request)
        {
            Done++;
            device.Return(request);
            Issue();
        }
    }

    [Theory]
    [InlineData("vtd")]
    [InlineData("smmuv3")]
    public void Demand_paging_faults_allocate_nothing_per_fault(string arch)
    {
        var spec = new PlatformSpec { Devices = [new DeviceSpec(Sim.Dev3, 3, Ats: true, PageRequests: true)] };
        var options = new IommuSim.Hardware.Iommu.IommuOptions { Architecture = arch };
        options.Smmu.DriverPri = "iopf";
        var hw = PlatformPort.CreatePlatform(spec, options);
        var sys = SystemProvisioner.Provision(hw, new ProvisionRequest("single-stage", new StageSpec(), new StageSpec(), [],
            [new DeviceProvision(Sim.Dev3, "kernel", [])]));
        var dev = hw.Device(Sim.Dev3)!;
        ulong pool = hw.Frames.AllocateContiguous(64UL << 20, 2UL << 20);
        var iopf = sys.Kernel.CreateIopfHandler(1_000_000); // 1 µs per fault
        var target = MappingTargets.ForKernelDomain((Uapi.Driver.IommuPagingDomain)sys.Devices[Sim.Dev3].KernelDomain!,
            new MappingWindow(pool, 64UL << 20, 0x7000_0000_0000, 1UL << 36));
        iopf.Register(dev, target, [(Window, 64UL << 20)]);
        var loop = new NextPage(dev);
        dev.Client = loop;
        loop.Issue();
        hw.Scheduler.Run(untilTime: 3_000_000_000); // 3 ms: queues and pools reach their size
        long faults = iopf.Handled, done = loop.Done;
        long before = GC.GetAllocatedBytesForCurrentThread();
        hw.Scheduler.Run(untilTime: 9_000_000_000);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        faults = iopf.Handled - faults;
        Assert.Equal(faults, loop.Done - done); // every DMA faulted once, was answered and completed
        Assert.True(faults > 1000, $"{faults} faults");
        Assert.True(bytes < 32 * faults, $"{bytes} bytes allocated for {faults} faults");
    }
}
