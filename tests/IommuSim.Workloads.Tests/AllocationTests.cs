using IommuSim.Engine.Time;
using IommuSim.Engine.Units;
using IommuSim.Workloads.Nic;
using IommuSim.Workloads.Nvme;

namespace IommuSim.Workloads.Tests;

/// <summary>
/// Once pools and queues have grown, the device models allocate nothing per packet or command:
/// whatever the second half of a run allocates (a pool reaching a new peak) stays far below one
/// object (≥ 24 bytes) per operation.
/// </summary>
public class AllocationTests
{
    private static long AllocatedDuringSecondHalf(WorkloadDriver w, ModelHarness h, double firstUs, double secondUs)
    {
        w.Start();
        h.Scheduler.Run(SimTime.FromUs(firstUs));
        long before = GC.GetAllocatedBytesForCurrentThread();
        h.Scheduler.Run(SimTime.FromUs(firstUs + secondUs));
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void Nic_rx_steady_state_allocates_nothing()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("nic0", 3);
        var o = new WorkloadOptions
        {
            Device = "nic0", Type = "nic-rx", Bytes = new ByteSize(1500), Arrival = "poisson",
            Nic = new NicOptions { RingSize = 256, Mpps = 4 },
        };
        var w = new NicWorkload(o, dev, h.Scheduler, new RequestBudget(0, 0), ModelHarness.Rng(1), null, "w");
        long bytes = AllocatedDuringSecondHalf(w, h, 200, 300);
        long packets = w.Stats.Delivered - 800; // ≈ 4 Mpps × 200 µs happened in the first half
        Assert.True(packets > 1000);
        Assert.True(bytes < 4 * packets, $"{bytes} bytes allocated for {packets} packets");
    }

    [Fact]
    public void Nvme_steady_state_allocates_nothing()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("ssd0", 4);
        var o = new WorkloadOptions
        {
            Device = "ssd0", Type = "nvme", Bytes = new ByteSize(16384), WorkingSetBytes = new ByteSize(8 << 20),
            Nvme = new NvmeOptions { QueueDepth = 32 },
        };
        var w = new NvmeWorkload(o, dev, h.Scheduler, new RequestBudget(0, 0), ModelHarness.Rng(1), null, "w");
        long bytes = AllocatedDuringSecondHalf(w, h, 200, 300);
        long commands = w.Stats.Completed * 3 / 5; // the second half's share
        Assert.True(commands > 100);
        Assert.True(bytes < 4 * commands, $"{bytes} bytes allocated for {commands} commands");
    }
}

/// <summary>The hooks pass pooled objects and primitives: an observer on every hook allocates nothing per request either.</summary>
public class ObservedAllocationTests
{
    private sealed class Counting : Hardware.Observers.HardwareObserver
    {
        public long Calls;
        public override void OnDmaIssued(Hardware.Devices.DmaEngine device, Hardware.Pcie.DmaRequest request) => Calls++;
        public override void OnTlpSent(Hardware.Devices.DmaEngine device, Hardware.Pcie.Tlp tlp, long linkArrivalPs) => Calls++;
        public override void OnLinkTransfer(Hardware.Pcie.LinkDirection direction, long startPs, long endPs, int wireBytes, int payloadBytes) => Calls++;
        public override void OnIommuAccepted(Hardware.Pcie.Tlp tlp, long lookupDonePs) => Calls++;
        public override void OnWalkRead(int walker, Hardware.PageTables.TableStage stage, int level, ulong entryAddress, long issuePs, long donePs) => Calls++;
        public override void OnTranslated(Hardware.Pcie.Tlp tlp) => Calls++;
        public override void OnMemoryAccess(Hardware.Pcie.Tlp tlp, long donePs) => Calls++;
        public override void OnDmaCompleted(Hardware.Devices.DmaEngine device, Hardware.Pcie.DmaRequest request) => Calls++;
    }

    [Fact]
    public void Random_dma_with_an_observer_allocates_nothing_per_request()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("dev0", 3);
        var a = new Counting();
        var b = new Counting();
        h.Platform.AddObserver(a);
        h.Platform.AddObserver(b); // two: the fan-out path
        var o = new WorkloadOptions { Device = "dev0", Type = "random", Bytes = new ByteSize(64), WorkingSetBytes = new ByteSize(16 << 20) };
        var w = new Generators.RandomWorkload(o, dev, h.Scheduler, new RequestBudget(0, 0), ModelHarness.Rng(1), ModelHarness.RegionIova);
        w.Start();
        h.Scheduler.Run(SimTime.FromUs(100));
        long before = GC.GetAllocatedBytesForCurrentThread(), requestsBefore = dev.Stats.Completed;
        h.Scheduler.Run(SimTime.FromUs(300));
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before, requests = dev.Stats.Completed - requestsBefore;
        Assert.True(requests > 1000);
        Assert.True(a.Calls > 6 * requests && a.Calls == b.Calls);
        Assert.True(bytes < 4 * requests, $"{bytes} bytes allocated for {requests} requests");
    }
}
