using IommuSim.Engine.Units;
using IommuSim.Workloads.Nic;
using IommuSim.Workloads.Nvme;

namespace IommuSim.Workloads.Tests;

public class MultiDeviceTests
{
    [Fact]
    public void Two_nics_and_an_ssd_share_the_iommu_and_the_budget_with_their_own_stats()
    {
        var h = new ModelHarness();
        var nic0 = h.AddDevice("nic0", 3);
        var nic1 = h.AddDevice("nic1", 4);
        var ssd = h.AddDevice("ssd0", 5);
        var budget = new RequestBudget(300, 6000);
        WorkloadOptions Nic(string dev, string type, double mpps) => new()
        {
            Device = dev, Type = type, Bytes = new ByteSize(1500), Arrival = "poisson",
            Nic = new NicOptions { RingSize = 256, Mpps = mpps },
        };
        var rx = new NicWorkload(Nic("nic0", "nic-rx", 3), nic0, h.Scheduler, budget, ModelHarness.Rng(1, 0), null, "workloads:0");
        var tx = new NicWorkload(Nic("nic1", "nic-tx", 1), nic1, h.Scheduler, budget, ModelHarness.Rng(1, 1), null, "workloads:1");
        var nvme = new NvmeWorkload(new WorkloadOptions
        {
            Device = "ssd0", Type = "nvme", Bytes = new ByteSize(16384), WorkingSetBytes = new ByteSize(4 << 20),
            Nvme = new NvmeOptions { QueueDepth = 16 },
        }, ssd, h.Scheduler, budget, ModelHarness.Rng(1, 2), null, "workloads:2");
        h.Run([rx, tx, nvme]);

        Assert.True(budget.Finished);
        long total = rx.Stats.Offered + tx.Stats.Offered + nvme.Stats.Completed;
        Assert.Equal(6000, total);
        Assert.True(rx.Stats.Delivered > 2 * tx.Stats.Delivered, $"rx {rx.Stats.Delivered}, tx {tx.Stats.Delivered}");
        Assert.True(nvme.Stats.Completed > 100);
        // Each device's DMA engine counted its own requests: a NIC packet is a buffer DMA and a
        // write-back plus its share of descriptor fetches; an NVMe command four DMAs (with a PRP list).
        Assert.InRange(nic0.Stats.Issued, 2 * rx.Stats.Delivered, 2.2 * rx.Stats.Delivered + 40);
        Assert.InRange(nic1.Stats.Issued, 3 * tx.Stats.Delivered - 40, 3 * tx.Stats.Delivered + 40);
        Assert.InRange(ssd.Stats.Issued, 4 * nvme.Stats.Completed, 4 * nvme.Stats.Completed + 4 * 16);
        Assert.Equal(16, (int)nvme.Summary().Single(k => k.Key == "queueDepth").Value);
        Assert.True(h.Platform.Iommu.Iotlb.Lookups > nic0.Stats.Tlps); // all three translate through the one IOMMU
    }
}
