namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The DMA API's IOVA allocator for one domain, as Linux builds it (drivers/iommu/iova.c, used by
/// drivers/iommu/dma-iommu.c): one <c>struct iova_domain</c> shared by all CPUs, with
/// <list type="bullet">
/// <item>per size class up to 2^(IOVA_RANGE_CACHE_MAX_SIZE − 1) pages an <see cref="IovaRcache"/>
/// (per-CPU loaded/prev magazines and a shared depot), consulted first by
/// <c>alloc_iova_fast</c> and filled by <c>free_iova_fast</c>;</item>
/// <item>behind them the <see cref="IovaRbtree"/> of allocated ranges, searched top-down from the
/// domain's limit (<c>alloc_iova(…, size_aligned = true)</c>).</item>
/// </list>
/// The window is [<c>baseIova</c>, <c>baseIova + bytes</c>): its first pfn is <c>start_pfn</c>
/// (iommu_dma_init_domain: the aperture start, at least 1) and its last the <c>limit_pfn</c>
/// (iommu_dma_alloc_iova: the DMA mask clipped to the aperture end). The first try below 4 GiB
/// that iommu_dma_alloc_iova makes for PCI devices (pci_32bit_workaround) is not modelled: the
/// window given is where this domain's IOVAs go. Granule 4 KiB.
/// </summary>
public sealed class IovaAllocator
{
    /// <summary>IOVA_RANGE_CACHE_MAX_SIZE: log2 of the largest cached range (in pages) + 1.</summary>
    public const int RangeCacheMaxSize = 6;
    private const int Shift = 12;

    private readonly IovaRbtree _tree;
    private readonly IovaRcache[] _rcaches = new IovaRcache[RangeCacheMaxSize];
    private readonly ulong _limitPfn;
    private readonly ulong _windowBytes;
    private readonly Action<ulong> _freeToTree;

    public IovaAllocator(ulong baseIova, ulong bytes, int cpus = KernelDmaApi.MaxCpus)
    {
        if (bytes < 1UL << Shift) throw new ArgumentOutOfRangeException(nameof(bytes), "the IOVA window holds no page");
        ulong startPfn = Math.Max(1, baseIova >> Shift);
        _limitPfn = (baseIova + bytes - 1) >> Shift;
        _windowBytes = bytes;
        _tree = new IovaRbtree(startPfn);
        for (int i = 0; i < _rcaches.Length; i++) _rcaches[i] = new IovaRcache(cpus);
        _freeToTree = pfn => _tree.Free(pfn);
    }

    /// <summary>Allocations made (all CPUs).</summary>
    public long Allocated { get; private set; }
    /// <summary>Allocations served by an rcache (magazine or depot).</summary>
    public long RcacheHits { get; private set; }

    /// <summary>The rbtree (tests and diagnostics).</summary>
    public IovaRbtree Tree => _tree;

    /// <summary>The rcache of pages rounded up to 2^<paramref name="order"/> (tests).</summary>
    public IovaRcache Rcache(int order) => _rcaches[order];

    /// <summary>
    /// iommu_dma_alloc_iova → <c>alloc_iova_fast(iovad, iova_len, limit_pfn, flush_rcache = true)</c>
    /// on CPU <paramref name="cpu"/>: the length in pages, rounded up to a power of two when below
    /// 2^(IOVA_RANGE_CACHE_MAX_SIZE − 1); the rcache of its order first (a pfn at or below
    /// limit − size), else the rbtree top-down, size-aligned; when that fails every CPU's cache and
    /// the depot are returned to the rbtree and the search repeated. Throws when the window is full.
    /// </summary>
    public ulong Allocate(ulong length, int cpu = 0)
    {
        ulong size = (length + (1UL << Shift) - 1) >> Shift;
        if (size == 0) size = 1;
        // "Freeing non-power-of-two-sized allocations back into the IOVA caches will come back to bite
        // us badly, so we have to waste a bit of space rounding up anything cacheable."
        if (size < 1UL << (RangeCacheMaxSize - 1)) size = System.Numerics.BitOperations.RoundUpToPowerOf2(size);
        Allocated++;
        int order = OrderBase2(size);
        if (order < RangeCacheMaxSize)
        {
            // iova_rcache_get(iovad, size, limit_pfn + 1) → __iova_rcache_get(rcache, limit_pfn + 1 - size)
            ulong pfn = _rcaches[order].Get(cpu, _limitPfn + 1 - size);
            if (pfn != 0) { RcacheHits++; return pfn << Shift; }
        }
        // alloc_iova(iovad, size, limit_pfn, true) → __alloc_and_insert_iova_range(…, limit_pfn + 1, …)
        ulong lo = _tree.AllocAndInsert(size, _limitPfn + 1, sizeAligned: true);
        if (lo == 0)
        {
            // flush_rcache: free_cpu_cached_iovas for each CPU, free_global_cached_iovas, retry once.
            foreach (var r in _rcaches) r.FlushAll(_freeToTree);
            lo = _tree.AllocAndInsert(size, _limitPfn + 1, sizeAligned: true);
            if (lo == 0) throw new InvalidOperationException($"DMA IOVA window of 0x{_windowBytes:x} bytes exhausted");
        }
        return lo << Shift;
    }

    /// <summary>
    /// iommu_dma_free_iova → <c>free_iova_fast(iovad, pfn, size)</c> on CPU <paramref name="cpu"/>:
    /// into the rcache of order_base_2(size) when below IOVA_RANGE_CACHE_MAX_SIZE, else back to the rbtree.
    /// </summary>
    public void Free(ulong iova, ulong length, int cpu = 0)
    {
        ulong size = Math.Max(1, (length + (1UL << Shift) - 1) >> Shift);
        int order = OrderBase2(size);
        if (order < RangeCacheMaxSize) _rcaches[order].Insert(cpu, iova >> Shift);
        else _tree.Free(iova >> Shift);
    }

    /// <summary>order_base_2: ceil(log2(n)).</summary>
    internal static int OrderBase2(ulong n) => n <= 1 ? 0 : IovaRbtree.FlsLong(n - 1);
}
