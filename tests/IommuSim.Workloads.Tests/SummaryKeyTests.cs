using IommuSim.Engine.Units;
using IommuSim.Workloads.Nic;
using IommuSim.Workloads.Nvme;

namespace IommuSim.Workloads.Tests;

/// <summary>The summary keys are a contract (devices.&lt;name&gt;.nic.* / .nvme.*): names and order are fixed.</summary>
public class SummaryKeyTests
{
    [Fact]
    public void Nic_summary_keys()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("nic0", 3);
        var w = new NicWorkload(new WorkloadOptions { Device = "nic0", Type = "nic-rx", Bytes = new ByteSize(1500), Arrival = "constant", Nic = new NicOptions { RingSize = 64, Mpps = 1 } },
            dev, h.Scheduler, new RequestBudget(0, 10), ModelHarness.Rng(1), null, "w");
        h.Run([w]);
        Assert.Equal("nic", w.Section);
        Assert.Equal(
        [
            "packetsOffered", "packetsDelivered", "packetsDropped", "droppedRingFull", "droppedFifoFull", "packetsFaulted", "dropRate",
            "throughputGbps", "mpps", "latencyNs.mean", "latencyNs.p50", "latencyNs.p90", "latencyNs.p99", "latencyNs.p999", "latencyNs.max",
            "queues", "ringSize", "ringOccupancyMean", "ringOccupancyMax", "ringFullFraction", "descriptorFetches", "descriptorsPerFetch",
            "bufferDmas", "writeBacks", "descriptorsPerWriteBack", "dmaFaults", "bufferWindowBytes", "maps", "unmaps", "mapLatencyNs.mean", "unmapLatencyNs.mean",
            "driverBusyFraction",
        ], w.Summary().Select(kv => kv.Key));
        Assert.Equal(["nic.packet", "nic.map", "nic.unmap"], w.Histograms.Select(x => x.Name));
    }

    [Fact]
    public void Nvme_summary_keys()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("ssd0", 4);
        var w = new NvmeWorkload(new WorkloadOptions { Device = "ssd0", Type = "nvme", Bytes = new ByteSize(4096), Nvme = new NvmeOptions { QueueDepth = 4 } },
            dev, h.Scheduler, new RequestBudget(0, 10), ModelHarness.Rng(1), null, "w");
        h.Run([w]);
        Assert.Equal("nvme", w.Section);
        Assert.Equal(
        [
            "commandsSubmitted", "commandsCompleted", "readCommands", "writeCommands", "commandsFaulted", "iops", "throughputGbps",
            "latencyNs.mean", "latencyNs.p50", "latencyNs.p90", "latencyNs.p99", "latencyNs.p999", "latencyNs.max",
            "readLatencyNs.mean", "writeLatencyNs.mean", "queueDepth", "outstandingMean", "hostBacklogMean", "hostBacklogMax",
            "mediaUtilization", "sqEntryFetches", "prpListFetches", "prpListBytes", "dataDmas", "cqEntryWrites", "dmaFaults",
            "maps", "unmaps", "mapLatencyNs.mean", "unmapLatencyNs.mean", "hostBusyFraction",
        ], w.Summary().Select(kv => kv.Key));
        Assert.Equal(["nvme.command", "nvme.read", "nvme.write", "nvme.map", "nvme.unmap"], w.Histograms.Select(x => x.Name));
        Assert.Equal(10, w.Summary().Single(k => k.Key == "commandsCompleted").Value);
    }
}
