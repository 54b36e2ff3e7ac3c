using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Tests;

/// <summary>
/// Context- and PASID-cache misses (VT-d §3.4.3): four dependent reads, each issued when the one
/// before it has returned; concurrent misses on the same entry share one fetch.
/// </summary>
public class ConfigFetchTests
{
    private const ulong Iova = 0x4000_0000, Pa = 0x8000_0000;

    private sealed class Collect : IDmaClient
    {
        public readonly List<(bool Faulted, long LatencyPs)> Done = [];
        public void OnDmaComplete(DmaEngine device, DmaRequest request)
        {
            Done.Add((request.Faulted, request.LatencyPs));
            device.Return(request);
        }
    }

    private static Collect IssueTogether(TestPlatform tp, int n)
    {
        var c = new Collect();
        tp.Device.Client = c;
        for (int i = 0; i < n; i++)
        {
            var r = tp.Device.Rent();
            r.Iova = Iova + (ulong)i * 0x1000;
            r.Bytes = 64;
            r.IsWrite = false;
            r.Measured = false;
            tp.Device.Issue(r);
        }
        tp.Platform.RunUntil(() => c.Done.Count == n);
        return c;
    }

    [Fact]
    public void A_cold_request_reads_root_context_pasid_directory_and_pasid_entries()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, Iova, Pa, 0x10_0000);
        Assert.False(tp.Dma(Iova).Faulted);
        Assert.Equal(4, tp.Platform.Iommu.TableFetchReads);
        Assert.False(tp.Dma(Iova + 0x1000).Faulted);
        Assert.Equal(4, tp.Platform.Iommu.TableFetchReads); // both entries now cached
    }

    [Theory]
    [InlineData(2)]
    [InlineData(8)]
    public void Concurrent_misses_on_one_entry_share_its_fetch(int requests)
    {
        var tp = new TestPlatform(device: d => d.MaxOutstanding = 8);
        tp.SetupSecondStage(4, Iova, Pa, 0x10_0000);
        var c = IssueTogether(tp, requests);
        Assert.All(c.Done, d => Assert.False(d.Faulted));
        Assert.Equal(4, tp.Platform.Iommu.TableFetchReads);
        Assert.Equal(1, tp.Platform.Iommu.ContextCache.Count);
        Assert.Equal(1, tp.Platform.Iommu.PasidCache.Count);
    }

    [Fact]
    public void Waiters_on_a_missing_context_entry_all_fault_with_its_reason()
    {
        var tp = new TestPlatform(device: d => d.MaxOutstanding = 4);
        var c = IssueTogether(tp, 4);
        Assert.All(c.Done, d => Assert.True(d.Faulted));
        Assert.Equal(4, tp.Platform.Iommu.Faults.CountOf(Iommu.Faults.FaultReason.ContextNotPresent));
        Assert.Equal(1, tp.Platform.Iommu.TableFetchReads); // the root entry is not present: one read
    }

    /// <summary>
    /// With paging-structure caches, a walk's first read (and each nested stage-2 sub-walk's) waits for the cache
    /// lookup; the read is given to the memory model when that lookup is over, never booked for a time still to come
    /// (which would reserve DRAM bandwidth ahead of requests issued in between).
    /// </summary>
    [Fact]
    public void A_walk_read_after_a_cache_lookup_goes_to_memory_when_the_lookup_is_over()
    {
        var tp = new TestPlatform(walkCaches: true);
        tp.SetupNested(4, 4, Iova, 0x20_0000, 0x10_0000);
        var reads = new List<(long Now, long Issue)>();
        tp.Platform.AddObserver(new WalkReadLog(tp, reads));
        Assert.False(tp.Dma(Iova).Faulted);
        Assert.True(reads.Count > 8, $"{reads.Count} reads"); // a cold 4 x 4 nested walk
        Assert.All(reads, r => Assert.Equal(r.Now, r.Issue));
    }

    private sealed class WalkReadLog(TestPlatform tp, List<(long, long)> reads) : Observers.HardwareObserver
    {
        public override void OnWalkRead(int walker, TableStage stage, int level, ulong entryAddress, long issuePs, long donePs)
            => reads.Add((tp.Platform.Scheduler.Now, issuePs));
    }
}
