using CsCheck;
using IommuSim.Uapi.DmaApi;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// The DMA API's IOVA allocator against drivers/iommu/iova.c (alloc_iova_fast, free_iova_fast,
/// __alloc_and_insert_iova_range, __iova_rcache_get/insert, iova_magazine_pop) and
/// drivers/iommu/dma-iommu.c (iommu_dma_alloc_iova, iommu_dma_free_iova).
/// </summary>
public class IovaAllocatorKernelTests
{
    private const ulong Base = 0x10_0000_0000; // above 4 GiB: cached_node, not cached32_node
    private const ulong Mib = 1UL << 20;
    private const ulong Top = Base + Mib;      // 1 MiB window: limit_pfn = last page

    /// <summary>
    /// Fresh domain: the rbtree search starts at the anchor and goes top-down from limit_pfn
    /// (__alloc_and_insert_iova_range). Sizes below 2^(IOVA_RANGE_CACHE_MAX_SIZE − 1) pages are
    /// rounded up to a power of two (alloc_iova_fast) and every range is size-aligned
    /// (alloc_iova(…, size_aligned = true): pfn_lo aligned to 1 &lt;&lt; fls_long(size − 1)).
    /// </summary>
    [Theory]
    [InlineData("4K", Top - 0x1000)]
    [InlineData("4K,4K", Top - 0x2000)]
    [InlineData("4K,8K", Top - 0x4000)]              // 8 KiB aligned below the first page: a one-page hole stays
    [InlineData("4K,12K", Top - 0x8000)]             // 3 pages → 4, 16 KiB aligned
    [InlineData("2K", Top - 0x1000)]                  // a sub-page buffer takes one page
    [InlineData("128K", Top - 0x20000)]              // 32 pages: no rounding, 128 KiB aligned
    [InlineData("4K,132K", Top - 0x40000)]           // 33 pages (not rounded) aligned to 64 pages below the first page
    public void Rbtree_allocates_top_down_size_aligned(string sizes, ulong expectedLast)
    {
        var a = new IovaAllocator(Base, Mib);
        ulong last = 0;
        foreach (var s in sizes.Split(',')) last = a.Allocate(Bytes(s));
        Assert.Equal(expectedLast, last);
    }

    [Fact]
    public void A_freed_iova_comes_back_to_the_same_cpu_first_and_never_to_another()
    {
        // free_iova_fast puts the pfn in this CPU's loaded magazine; alloc_iova_fast on the same CPU pops it
        // (iova_magazine_pop: the most recent). Another CPU's magazines are empty, so it goes to the rbtree.
        var a = new IovaAllocator(Base, Mib);
        ulong x = a.Allocate(0x1000, cpu: 0);
        ulong y = a.Allocate(0x1000, cpu: 0);
        a.Free(x, 0x1000, cpu: 0);
        a.Free(y, 0x1000, cpu: 0);
        Assert.Equal(Top - 0x3000, a.Allocate(0x1000, cpu: 1));
        Assert.Equal(y, a.Allocate(0x1000, cpu: 0));
        Assert.Equal(x, a.Allocate(0x1000, cpu: 0));
        Assert.Equal(2, a.RcacheHits);
        // A cached range stays in the rbtree (it is still allocated as far as the tree knows).
        Assert.Equal(3, a.Tree.Count);
    }

    [Fact]
    public void Size_classes_are_separate_magazines()
    {
        // iova_rcache_insert: rcaches[order_base_2(size)]; a freed 1-page IOVA does not serve a 2-page request.
        var a = new IovaAllocator(Base, Mib);
        ulong one = a.Allocate(0x1000);
        a.Free(one, 0x1000);
        ulong two = a.Allocate(0x2000);
        Assert.NotEqual(one, two);
        Assert.Equal(0UL, two % 0x2000);
        Assert.Equal(1, a.Rcache(0).CpuCached(0));
        a.Free(two, 0x2000);
        Assert.Equal(1, a.Rcache(1).CpuCached(0));
    }

    [Fact]
    public void Full_magazines_go_to_the_depot_which_any_cpu_then_uses()
    {
        // __iova_rcache_insert: loaded full → swap with prev if prev has room → else push loaded to the depot.
        // __iova_rcache_get on a CPU whose loaded and prev are empty pops the depot's last-pushed magazine.
        const int m = IovaRcache.MagSize;
        var a = new IovaAllocator(Base, 64 * Mib);
        var iovas = new List<ulong>();
        for (int i = 0; i < 2 * m + 1; i++) iovas.Add(a.Allocate(0x1000, cpu: 0));
        foreach (var v in iovas) a.Free(v, 0x1000, cpu: 0);
        var r = a.Rcache(0);
        Assert.Equal(1, r.DepotSize);               // the second full magazine was pushed
        Assert.Equal(m + 1, r.CpuCached(0));        // prev (first m, full) + a new loaded with the last one
        // CPU 1 takes the depot magazine: its top is the last pfn pushed into it (iovas[2m − 1]).
        Assert.Equal(iovas[2 * m - 1], a.Allocate(0x1000, cpu: 1));
        Assert.Equal(0, r.DepotSize);
        Assert.Equal(m - 1, r.CpuCached(1));
    }

    [Fact]
    public void Magazine_pop_skips_pfns_above_the_limit()
    {
        // iova_magazine_pop(mag, limit_pfn) with limit = limit_pfn + 1 − size: the window's last page is
        // exactly at that limit, so a cached top page is handed out again (the bound is inclusive).
        var a = new IovaAllocator(Base, Mib);
        ulong top = a.Allocate(0x1000);
        Assert.Equal(Top - 0x1000, top);
        a.Free(top, 0x1000);
        Assert.Equal(top, a.Allocate(0x1000));
        Assert.Equal(1, a.RcacheHits);
    }

    [Fact]
    public void Uncached_sizes_go_back_to_the_rbtree_and_the_cached_node_moves_up()
    {
        // 64 pages: order 6 = IOVA_RANGE_CACHE_MAX_SIZE, not cached: free_iova_fast → free_iova, and
        // __cached_rbnode_delete_update moves cached_node above the freed range, so the next search finds it.
        var a = new IovaAllocator(Base, 4 * Mib);
        ulong x = a.Allocate(64 * 0x1000);
        ulong y = a.Allocate(64 * 0x1000);
        Assert.Equal(Base + 4 * Mib - 0x40000, x);
        Assert.Equal(x - 0x40000, y);
        a.Free(x, 64 * 0x1000);
        Assert.Equal(1, a.Tree.Count);
        Assert.Equal(x, a.Allocate(64 * 0x1000));
    }

    [Fact]
    public void A_full_window_flushes_every_cpu_cache_and_the_depot_before_giving_up()
    {
        // alloc_iova_fast(…, flush_rcache = true): free_cpu_cached_iovas for each CPU, free_global_cached_iovas, retry.
        var a = new IovaAllocator(Base, 4 * 0x1000);
        var held = Enumerable.Range(0, 4).Select(_ => a.Allocate(0x1000, cpu: 0)).ToList();
        a.Free(held[2], 0x1000, cpu: 0);        // cached on CPU 0
        Assert.Equal(held[2], a.Allocate(0x1000, cpu: 1)); // CPU 1: rbtree full → flush → the freed one
        Assert.Equal(0, a.Rcache(0).CpuCached(0));
        Assert.Throws<InvalidOperationException>(() => a.Allocate(0x1000, cpu: 1));
    }

    [Fact]
    public void Below_4GiB_the_search_uses_cached32_node_and_fills_holes_after_a_retry()
    {
        // Window [16 MiB, 17 MiB): limit_pfn <= dma_32bit_pfn, so cached32_node; 64-page ranges are not cached.
        var a = new IovaAllocator(16 * Mib, Mib);
        ulong p = 64 * 0x1000;
        var r = Enumerable.Range(0, 4).Select(_ => a.Allocate(p)).ToList();
        Assert.Equal(new[] { 17 * Mib - p, 17 * Mib - 2 * p, 17 * Mib - 3 * p, 17 * Mib - 4 * p }, r);
        a.Free(r[1], p); // below cached32 (r[3])? no: at/above it → cached32 moves to rb_next(r[1]) = r[0]
        Assert.Equal(r[1], a.Allocate(p));
    }

    /// <summary>Invariant: live ranges never overlap, stay inside the window and are size-aligned, whatever the
    /// interleaving of CPUs, sizes, allocations and frees.</summary>
    [Fact]
    public void Live_ranges_never_overlap_and_are_size_aligned()
    {
        var op = Gen.Select(Gen.Int[0, 3], Gen.Int[0, 6], Gen.Bool, Gen.Int[0, 1000]);
        op.Array[1, 400].Sample(ops =>
        {
            var a = new IovaAllocator(Base, 2 * Mib, cpus: 4);
            var live = new List<(ulong Iova, ulong Bytes, int Cpu)>();
            foreach (var (cpu, sizeSel, free, pick) in ops)
            {
                if (free && live.Count > 0)
                {
                    var (iova, bytes, _) = live[pick % live.Count];
                    live.RemoveAt(pick % live.Count);
                    a.Free(iova, bytes, cpu);
                    continue;
                }
                ulong pages = sizeSel switch { 0 => 1, 1 => 2, 2 => 3, 3 => 8, 4 => 31, 5 => 33, _ => 64 };
                ulong got;
                try { got = a.Allocate(pages * 0x1000, cpu); }
                catch (InvalidOperationException) { continue; } // window full: allowed
                ulong rounded = pages < 32 ? System.Numerics.BitOperations.RoundUpToPowerOf2(pages) : pages;
                ulong align = System.Numerics.BitOperations.RoundUpToPowerOf2(rounded) * 0x1000;
                if (got < Base || got + rounded * 0x1000 > Base + 2 * Mib) return false;
                if (got % align != 0) return false;
                foreach (var (iova, bytes, _) in live)
                {
                    ulong end = iova + Round(bytes);
                    if (got < end && iova < got + rounded * 0x1000) return false;
                }
                live.Add((got, pages * 0x1000, cpu));
            }
            return true;
        }, iter: 300);
    }

    [Fact]
    public void Steady_state_map_unmap_allocates_nothing()
    {
        var a = new IovaAllocator(Base, 64 * Mib, cpus: 4);
        var held = new ulong[512];
        for (int round = 0; round < 3; round++) Cycle(a, held); // warm: rbtree array and magazines grown
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int round = 0; round < 20; round++) Cycle(a, held);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        static void Cycle(IovaAllocator a, ulong[] held)
        {
            for (int i = 0; i < held.Length; i++) held[i] = a.Allocate(i % 3 == 0 ? 0x2000UL : 0x1000UL, i & 3);
            for (int i = 0; i < held.Length; i++) a.Free(held[i], i % 3 == 0 ? 0x2000UL : 0x1000UL, i & 3);
        }
    }

    private static ulong Round(ulong bytes)
    {
        ulong pages = (bytes + 0xFFF) >> 12;
        return (pages < 32 ? System.Numerics.BitOperations.RoundUpToPowerOf2(pages) : pages) * 0x1000;
    }

    private static ulong Bytes(string s) => s.EndsWith('K') ? ulong.Parse(s[..^1]) * 1024 : ulong.Parse(s);
}
