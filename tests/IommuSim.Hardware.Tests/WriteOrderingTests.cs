using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Tests;

public class WriteOrderingTests
{
    private sealed class Recorder : IDmaClient
    {
        public readonly List<ulong> Order = [];
        public void OnDmaComplete(DmaEngine device, DmaRequest request)
        {
            Order.Add(request.Iova);
            device.Return(request);
        }
    }

    private static List<ulong> Run(bool ordered, bool write)
    {
        const ulong iova = 0x4000_0000;
        var tp = new TestPlatform(pcie: p => p.OrderedPostedWrites = ordered);
        tp.SetupSecondStage(4, iova, 0x8000_0000, 0x10000);
        tp.Dma(iova + 0x1000, 64, Access.Read); // warm page 1 in the IOTLB; page 0 stays cold
        var dev = tp.Device;
        var rec = new Recorder();
        dev.Client = rec;
        foreach (ulong a in new[] { iova, iova + 0x1000 })
        {
            var r = dev.Rent();
            r.Iova = a;
            r.Bytes = 64;
            r.IsWrite = write;
            dev.Issue(r);
        }
        tp.Platform.RunUntil(() => dev.Outstanding == 0);
        return rec.Order;
    }

    [Fact]
    public void A_posted_write_that_misses_holds_back_a_later_write_that_hits()
    {
        Assert.Equal([0x4000_0000UL, 0x4000_1000UL], Run(ordered: true, write: true));
        // Without PCIe ordering the hit overtakes the walk.
        Assert.Equal([0x4000_1000UL, 0x4000_0000UL], Run(ordered: false, write: true));
    }

    [Fact]
    public void Reads_are_not_ordered_behind_a_miss()
        => Assert.Equal([0x4000_1000UL, 0x4000_0000UL], Run(ordered: true, write: false));
}
