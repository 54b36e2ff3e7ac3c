using IommuSim.Engine.Rng;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Caches;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Tests;

/// <summary>The VT-d blocks on their own: context cache, PASID cache, invalidation executor, page request queue.</summary>
public class VtdBlockTests
{
    private static readonly RequesterId Rid3 = new(3, 0, 0), Rid4 = new(4, 0, 0);

    private static (TestPlatform Tp, ContextCache Cache) ContextCacheOverTwoDevices()
    {
        var tp = new TestPlatform();
        tp.Platform.Iommu.Tables.SetContext(Rid3, 0);
        tp.Platform.Iommu.Tables.SetContext(Rid4, 0);
        var p = tp.Platform;
        return (tp, new ContextCache(8, p.Memory, p.Timing, p.Iommu.Tables));
    }

    private static bool Fetches(ContextCache cache, RequesterId rid)
    {
        long t = 0;
        bool fetched = false;
        Assert.True(cache.Lookup(rid.Value, ref t, ref fetched).Present);
        return fetched;
    }

    [Fact]
    public void Context_cache_miss_reads_root_and_context_entry_then_hits()
    {
        var (_, cache) = ContextCacheOverTwoDevices();
        long t = 1000;
        bool fetched = false;
        var ctx = cache.Lookup(Rid3.Value, ref t, ref fetched);
        Assert.True(ctx.Present && fetched);
        Assert.Equal(2, cache.FetchReads);
        Assert.True(t > 1000); // two dependent memory reads
        long t2 = 5000;
        fetched = false;
        Assert.Equal(ctx, cache.Lookup(Rid3.Value, ref t2, ref fetched));
        Assert.False(fetched);
        Assert.Equal(5000, t2);
        Assert.Equal((1, 1), (cache.Hits, cache.Misses));
    }

    [Fact]
    public void Context_cache_does_not_keep_a_not_present_entry()
    {
        var (_, cache) = ContextCacheOverTwoDevices();
        long t = 0;
        bool fetched = false;
        Assert.False(cache.Lookup(new RequesterId(9, 0, 0).Value, ref t, ref fetched).Present);
        Assert.Equal(0, cache.Count);
    }

    [Theory]
    [InlineData(InvalidationGranularity.Global, true, true)]
    [InlineData(InvalidationGranularity.Domain, true, true)]  // scalable mode: no DID in the context entry, acts globally
    [InlineData(InvalidationGranularity.Device, true, false)] // only the named source id
    public void Context_cache_invalidation_by_granularity(InvalidationGranularity g, bool rid3Refetched, bool rid4Refetched)
    {
        var (_, cache) = ContextCacheOverTwoDevices();
        Assert.True(Fetches(cache, Rid3));
        Assert.True(Fetches(cache, Rid4));
        cache.Invalidate(new InvalidationDescriptor(InvalidationType.ContextCache, g, DomainId: 1, RequesterId: Rid3.Value));
        Assert.Equal(rid3Refetched, Fetches(cache, Rid3));
        Assert.Equal(rid4Refetched, Fetches(cache, Rid4));
    }

    [Theory]
    [InlineData(InvalidationGranularity.Global, true, true, true)]
    [InlineData(InvalidationGranularity.Domain, true, true, false)] // every PASID of domain 1
    [InlineData(InvalidationGranularity.Device, false, true, false)] // (domain 1, PASID 1) only
    public void Pasid_cache_invalidation_by_domain_and_pasid(InvalidationGranularity g, bool p0Refetched, bool p1Refetched, bool p2Refetched)
    {
        var tp = new TestPlatform();
        var tables = tp.Platform.Iommu.Tables;
        tables.SetContext(Rid3, 0);
        tables.SetPasidEntry(Rid3, 0, new PasidTableEntry(true, Pgtt.SecondStage, 1, 0, 4, 0x10_0000, 4));
        tables.SetPasidEntry(Rid3, 1, new PasidTableEntry(true, Pgtt.SecondStage, 1, 0, 4, 0x10_0000, 4));
        tables.SetPasidEntry(Rid3, 2, new PasidTableEntry(true, Pgtt.SecondStage, 2, 0, 4, 0x20_0000, 4));
        var cache = new PasidCache(8, tp.Platform.Memory, tp.Platform.Timing);
        var ctx = tables.ReadContext(Rid3);
        bool Fetch(uint pasid)
        {
            long t = 0;
            bool fetched = false;
            Assert.True(cache.Lookup(Rid3.Value, pasid, ctx, ref t, ref fetched).Present);
            return fetched;
        }
        Assert.True(Fetch(0) && Fetch(1) && Fetch(2));
        Assert.Equal(6, cache.FetchReads);
        cache.Invalidate(new InvalidationDescriptor(InvalidationType.PasidCache, g, DomainId: 1, Pasid: 1));
        Assert.Equal(p0Refetched, Fetch(0));
        Assert.Equal(p1Refetched, Fetch(1));
        Assert.Equal(p2Refetched, Fetch(2));
    }

    private sealed class Endpoint : IAtsEndpoint
    {
        public readonly List<InvalidationDescriptor> Invalidations = [], Responses = [];
        public int InvalidateDeviceTlb(in InvalidationDescriptor d) { Invalidations.Add(d); return 1; }
        public void OnPageResponse(in InvalidationDescriptor d) => Responses.Add(d);
    }

    private const ulong Iova = 0x4000_0000;

    private static (InvalidationExecutor Exec, Iotlb Iotlb, PagingStructureCaches Psc, Endpoint Ep) Executor()
    {
        var tp = new TestPlatform();
        var p = tp.Platform;
        var iotlb = new Iotlb(new IotlbOptions(), SimRandom.ForStream(1, "test"));
        var psc = new PagingStructureCaches(new WalkCacheOptions { Enabled = true });
        var exec = new InvalidationExecutor(new InvalidationOptions { DeviceTlbRoundTripNs = 700 },
            new ContextCache(4, p.Memory, p.Timing, p.Iommu.Tables), new PasidCache(4, p.Memory, p.Timing), iotlb, psc);
        var ep = new Endpoint();
        exec.RegisterEndpoint(Rid3.Value, ep);
        iotlb.Insert(1, 0, Iova, PageSize.Size4K, 0x8000_0000, Access.ReadWrite, 0, false);
        psc.Fill(TableStage.Second, 1, 0, Iova, 2, 0xABC000); // the PDE above the page
        return (exec, iotlb, psc, ep);
    }

    [Theory]
    [InlineData(true, true)]   // invalidation hint: the paging-structure caches stay
    [InlineData(false, false)]
    public void Page_selective_iotlb_invalidation_drops_the_translation_and_without_the_hint_the_walk_cache(bool leafOnly, bool pdeKept)
    {
        var (exec, iotlb, psc, _) = Executor();
        exec.Apply(InvalidationDescriptor.IotlbPages(1, Iova, 0, leafOnly));
        Assert.False(iotlb.Lookup(1, 0, Iova, out _));
        var (level, table) = psc.Lookup(TableStage.Second, 1, 0, Iova, 4, 0x1000);
        Assert.Equal(pdeKept ? (1, 0xABC000UL) : (4, 0x1000UL), (level, table));
    }

    [Fact]
    public void Iotlb_invalidation_of_another_domain_keeps_the_translation()
    {
        var (exec, iotlb, psc, _) = Executor();
        exec.Apply(InvalidationDescriptor.IotlbDomain(2));
        Assert.True(iotlb.Lookup(1, 0, Iova, out _));
        Assert.Equal(1, psc.Lookup(TableStage.Second, 1, 0, Iova, 4, 0x1000).Level);
    }

    [Fact]
    public void Device_tlb_invalidations_and_page_responses_go_to_the_endpoint_and_wait_for_its_answer()
    {
        var (exec, _, _, ep) = Executor();
        var dtlb = InvalidationDescriptor.DeviceTlb(Rid3.Value, Iova, 0);
        Assert.Equal(SimTime.FromNs(700), exec.ExtraLatencyPs(dtlb));
        Assert.Equal(0, exec.ExtraLatencyPs(InvalidationDescriptor.IotlbGlobal()));
        exec.Apply(dtlb);
        exec.Apply(InvalidationDescriptor.DeviceTlbAll(Rid4.Value)); // no endpoint there: counted, nothing to tell
        var response = new InvalidationDescriptor(InvalidationType.PageGroupResponse, RequesterId: Rid3.Value, PageGroupIndex: 5);
        exec.Apply(response);
        Assert.Equal([dtlb], ep.Invalidations);
        Assert.Equal([response], ep.Responses);
        Assert.Equal(2, exec.DeviceTlbInvalidations);
    }

    [Fact]
    public void Page_request_queue_writes_a_descriptor_from_the_message_and_keeps_it_across_a_counter_reset()
    {
        var q = new PageRequestQueue();
        var msg = new Tlp { RequesterId = Rid3.Value, Pasid = 7, HasPasid = true, Address = 0x5000, IsWrite = true, PageGroupIndex = 12 };
        q.Receive(msg, 1234);
        q.ResetCounters();
        Assert.Equal(0, q.Count);
        Assert.Equal(1, q.Pending);
        Assert.True(q.TryRead(out var pr));
        Assert.Equal(new PageRequest(1234, Rid3.Value, 7, true, 0x5000, Access.Write, 12, true), pr);
        Assert.False(q.TryRead(out _));
    }

    [Fact]
    public void Fault_recording_keeps_the_newest_records_and_counts_overflows()
    {
        var log = new FaultLog(capacity: 2);
        for (ulong a = 1; a <= 3; a++) log.Record(new Tlp { RequesterId = Rid3.Value, Address = a << 12 }, FaultReason.SecondStageNotPresent, (long)a);
        Assert.Equal((3, 1, 3), (log.Count, log.Overflows, log.CountOf(FaultReason.SecondStageNotPresent)));
        Assert.True(log.TryReadFault(out var first));
        Assert.Equal(0x2000UL, first.Address); // the oldest was overwritten
    }
}
