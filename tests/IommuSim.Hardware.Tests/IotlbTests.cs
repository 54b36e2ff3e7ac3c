using IommuSim.Engine.Rng;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Caches;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Tests;

public class IotlbTests
{
    /// <summary>A plain reference: per set, a list ordered most- to least-recently used.</summary>
    private sealed class ReferenceLru(int sets, int ways)
    {
        private readonly List<ulong>[] _sets = Enumerable.Range(0, sets).Select(_ => new List<ulong>()).ToArray();
        public long Misses;

        public void Access(ulong page)
        {
            var s = _sets[(int)(page % (ulong)sets)];
            int i = s.IndexOf(page);
            if (i >= 0) { s.RemoveAt(i); s.Insert(0, page); return; }
            Misses++;
            if (s.Count == ways) s.RemoveAt(s.Count - 1);
            s.Insert(0, page);
        }
    }

    [Theory]
    [InlineData(16, 4, 200, 1)]
    [InlineData(1, 64, 100, 2)]
    [InlineData(64, 1, 300, 3)]
    [InlineData(8, 8, 90, 4)]
    [InlineData(32, 2, 1000, 5)]
    public void Lru_miss_counts_match_a_reference_model_on_random_traces(int sets, int ways, int pages, int seed)
    {
        var tlb = new Iotlb(new IotlbOptions { Sets = sets, Ways = ways, Replacement = "lru" }, new SimRandom(1));
        var reference = new ReferenceLru(sets, ways);
        var rng = new SimRandom((ulong)seed);
        for (int i = 0; i < 20_000; i++)
        {
            // Mix of uniform and locally repeated accesses.
            ulong page = rng.NextDouble() < 0.5 ? rng.NextBelow((ulong)pages) : rng.NextBelow((ulong)Math.Max(1, pages / 8));
            ulong iova = page << 12;
            reference.Access(page);
            if (!tlb.Lookup(1, 0, iova, out _)) tlb.Insert(1, 0, iova, PageSize.Size4K, 0x1000_0000 + iova, Access.ReadWrite, 0, false);
        }
        Assert.Equal(reference.Misses, tlb.Misses);
        Assert.Equal(20_000, tlb.Lookups);
    }

    [Theory]
    [InlineData("lru")]
    [InlineData("plru")]
    [InlineData("fifo")]
    [InlineData("random")]
    public void Every_policy_keeps_a_working_set_that_fits(string policy)
    {
        var tlb = new Iotlb(new IotlbOptions { Sets = 4, Ways = 4, Replacement = policy }, new SimRandom(3));
        for (int round = 0; round < 10; round++)
            for (ulong p = 0; p < 16; p++)
                if (!tlb.Lookup(1, 0, p << 12, out _)) tlb.Insert(1, 0, p << 12, PageSize.Size4K, p << 12, Access.Read, 0, false);
        Assert.Equal(16, tlb.Misses); // only the cold misses
        Assert.Equal(16, tlb.Occupancy);
    }

    [Fact]
    public void Fifo_evicts_in_insertion_order_even_when_old_entries_are_hot()
    {
        var tlb = new Iotlb(new IotlbOptions { Sets = 1, Ways = 2, Replacement = "fifo" }, new SimRandom(3));
        tlb.Insert(1, 0, 0x1000, PageSize.Size4K, 0, Access.Read, 0, false);
        tlb.Insert(1, 0, 0x2000, PageSize.Size4K, 0, Access.Read, 0, false);
        Assert.True(tlb.Lookup(1, 0, 0x1000, out _)); // hot, but first in
        tlb.Insert(1, 0, 0x3000, PageSize.Size4K, 0, Access.Read, 0, false);
        Assert.False(tlb.Contains(1, 0, 0x1000));
        Assert.True(tlb.Contains(1, 0, 0x2000));
    }

    [Fact]
    public void Plru_protects_the_most_recently_used_way()
    {
        var tlb = new Iotlb(new IotlbOptions { Sets = 1, Ways = 4, Replacement = "plru" }, new SimRandom(3));
        for (ulong p = 1; p <= 4; p++) tlb.Insert(1, 0, p << 12, PageSize.Size4K, 0, Access.Read, 0, false);
        Assert.True(tlb.Lookup(1, 0, 4 << 12, out _));
        tlb.Insert(1, 0, 5 << 12, PageSize.Size4K, 0, Access.Read, 0, false);
        Assert.True(tlb.Contains(1, 0, 4 << 12));
        Assert.Equal(4, tlb.Occupancy);
    }

    [Fact]
    public void Entries_are_tagged_by_domain_and_pasid()
    {
        var tlb = new Iotlb(new IotlbOptions(), new SimRandom(1));
        tlb.Insert(1, 0, 0x5000, PageSize.Size4K, 0xA000, Access.ReadWrite, 0, false);
        Assert.False(tlb.Contains(2, 0, 0x5000));
        Assert.False(tlb.Contains(1, 7, 0x5000));
        Assert.True(tlb.Lookup(1, 0, 0x5123, out var hit));
        Assert.Equal(0xA123UL, hit.PhysicalAddress);
    }

    [Fact]
    public void Large_pages_cover_their_whole_range()
    {
        var tlb = new Iotlb(new IotlbOptions(), new SimRandom(1));
        tlb.Insert(1, 0, 0x4020_0000, PageSize.Size2M, 0x8000_0000, Access.ReadWrite, 0, false);
        Assert.True(tlb.Lookup(1, 0, 0x403F_F008, out var hit));
        Assert.Equal(0x801F_F008UL, hit.PhysicalAddress);
        Assert.Equal(PageSize.Size2M, hit.Size);
        Assert.False(tlb.Contains(1, 0, 0x4040_0000));
    }

    [Fact]
    public void Page_selective_invalidation_removes_only_the_named_entries()
    {
        var tlb = new Iotlb(new IotlbOptions { Sets = 16, Ways = 4 }, new SimRandom(1));
        for (ulong p = 0; p < 32; p++) tlb.Insert(1, 0, p << 12, PageSize.Size4K, p << 12, Access.ReadWrite, 0, false);
        tlb.Insert(2, 0, 4 << 12, PageSize.Size4K, 0, Access.ReadWrite, 0, false);
        // Pages 4..7 of domain 1 (address mask 2 = 4 pages).
        int n = tlb.InvalidateRange(1, null, 4 << 12, (8 << 12) - 1);
        Assert.Equal(4, n);
        for (ulong p = 0; p < 32; p++) Assert.Equal(p is < 4 or >= 8, tlb.Contains(1, 0, p << 12));
        Assert.True(tlb.Contains(2, 0, 4 << 12));
        Assert.Equal(4, tlb.InvalidatedEntries);
    }
}
