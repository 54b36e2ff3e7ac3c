namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The allocated IOVA ranges of one domain, in pfn order, as drivers/iommu/iova.c keeps them in its
/// rbtree (<c>iovad-&gt;rbroot</c>), with the same top-down search from the cached node
/// (<c>__alloc_and_insert_iova_range</c>, <c>__get_cached_rbnode</c>,
/// <c>__cached_rbnode_insert_update</c>, <c>__cached_rbnode_delete_update</c>, <c>iova_find_limit</c>).
/// Stored as a sorted array (rb_prev / rb_next are index −1 / +1) whose last entry is the anchor
/// node (<c>IOVA_ANCHOR</c> = ~0UL): same order, same search, no allocation per call once the
/// array has grown to the number of live ranges.
/// </summary>
public sealed class IovaRbtree
{
    /// <summary>The anchor node sits above the top of the usable address space (iova.c: IOVA_ANCHOR).</summary>
    public const ulong Anchor = ulong.MaxValue;

    private ulong[] _lo;
    private ulong[] _hi;
    private int _count; // including the anchor
    // The cached nodes are named by their pfn_lo (node identity survives array shifts).
    private ulong _cachedNode = Anchor;
    private ulong _cached32Node = Anchor;
    private ulong _max32AllocSize;

    public IovaRbtree(ulong startPfn, int initialCapacity = 1024)
    {
        StartPfn = startPfn;
        _lo = new ulong[Math.Max(2, initialCapacity)];
        _hi = new ulong[_lo.Length];
        _lo[0] = _hi[0] = Anchor;
        _count = 1;
        _max32AllocSize = Dma32BitPfn;
    }

    /// <summary>init_iova_domain: the lowest pfn handed out.</summary>
    public ulong StartPfn { get; }

    /// <summary>iovad-&gt;dma_32bit_pfn for a 4 KiB granule: 1 &lt;&lt; (32 − 12).</summary>
    public const ulong Dma32BitPfn = 1UL << 20;

    /// <summary>Ranges in the tree (allocated or held in an rcache), without the anchor.</summary>
    public int Count => _count - 1;

    /// <summary>The i-th range in pfn order (tests).</summary>
    public (ulong Lo, ulong Hi) this[int i] => (_lo[i], _hi[i]);

    /// <summary>
    /// <c>__alloc_and_insert_iova_range(iovad, size, limit_pfn, new, size_aligned)</c>: walks the
    /// tree backwards from the cached node for the first gap below <paramref name="limitPfn"/>
    /// (exclusive) that holds <paramref name="size"/> pages (aligned to size rounded up to a power
    /// of two when <paramref name="sizeAligned"/>); once, retries from the limit down to where the
    /// first search started. Returns the new range's pfn_lo, or 0 when nothing fits (-ENOMEM).
    /// </summary>
    public ulong AllocAndInsert(ulong size, ulong limitPfn, bool sizeAligned)
    {
        ulong alignMask = ~0UL;
        if (sizeAligned) alignMask <<= FlsLong(size - 1);
        ulong highPfn = limitPfn, lowPfn = StartPfn;
        if (limitPfn <= Dma32BitPfn && size >= _max32AllocSize) return 0; // iova32_full

        int curr = IndexOf(limitPfn <= Dma32BitPfn ? _cached32Node : _cachedNode);
        ulong retryPfn = _hi[curr];
        ulong newPfn;
        int prev;
        while (true)
        {
            // do { ... } while (curr && new_pfn <= curr_iova->pfn_hi && new_pfn >= low_pfn);
            do
            {
                highPfn = Math.Min(highPfn, _lo[curr]);
                newPfn = (highPfn - size) & alignMask; // wraps when high_pfn < size; caught below, as in C
                prev = curr;
                curr--;
            } while (curr >= 0 && newPfn <= _hi[curr] && newPfn >= lowPfn);

            if (highPfn < size || newPfn < lowPfn)
            {
                if (lowPfn == StartPfn && retryPfn < limitPfn)
                {
                    highPfn = limitPfn;
                    lowPfn = retryPfn + 1;
                    curr = FindLimit(limitPfn);
                    continue;
                }
                _max32AllocSize = size;
                return 0;
            }
            break;
        }
        // The new node goes just below `prev` (iova_insert_rbtree starting at prev).
        Insert(prev, newPfn, newPfn + size - 1);
        if (newPfn + size - 1 < Dma32BitPfn) _cached32Node = newPfn; else _cachedNode = newPfn;
        return newPfn;
    }

    /// <summary><c>free_iova</c>: removes the range starting at (or holding) <paramref name="pfn"/>; false when none does.</summary>
    public bool Free(ulong pfn)
    {
        int i = Find(pfn);
        if (i < 0) return false;
        ulong lo = _lo[i], hi = _hi[i];
        // __cached_rbnode_delete_update: the cached nodes move up past a freed node at or above them.
        ulong next = _lo[i + 1]; // rb_next(&free->node); the anchor is always above
        if (lo == _cached32Node || (hi < Dma32BitPfn && lo >= _cached32Node)) _cached32Node = next;
        if (lo < Dma32BitPfn) _max32AllocSize = Dma32BitPfn;
        if (lo >= _cachedNode) _cachedNode = next;
        Array.Copy(_lo, i + 1, _lo, i, _count - i - 1);
        Array.Copy(_hi, i + 1, _hi, i, _count - i - 1);
        _count--;
        return true;
    }

    /// <summary>private_find_iova: the index of the range holding <paramref name="pfn"/>, or −1.</summary>
    public int Find(ulong pfn)
    {
        int i = UpperBound(pfn) - 1; // last range with lo <= pfn
        return i >= 0 && i < _count - 1 && pfn <= _hi[i] ? i : -1;
    }

    /// <summary>iova_find_limit: the first node whose pfn_lo is at or above <paramref name="limitPfn"/> (the anchor at worst).</summary>
    private int FindLimit(ulong limitPfn)
    {
        int lo = 0, hi = _count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_lo[mid] >= limitPfn) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    private int IndexOf(ulong pfnLo)
    {
        int i = UpperBound(pfnLo) - 1;
        return i >= 0 && _lo[i] == pfnLo ? i : _count - 1;
    }

    /// <summary>First index whose pfn_lo is above <paramref name="pfn"/>.</summary>
    private int UpperBound(ulong pfn)
    {
        int lo = 0, hi = _count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_lo[mid] > pfn) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    private void Insert(int at, ulong lo, ulong hi)
    {
        if (_count == _lo.Length)
        {
            // Growth happens while the number of live ranges rises (warm-up), not per call.
            Array.Resize(ref _lo, _lo.Length * 2);
            Array.Resize(ref _hi, _hi.Length * 2);
        }
        Array.Copy(_lo, at, _lo, at + 1, _count - at);
        Array.Copy(_hi, at, _hi, at + 1, _count - at);
        _lo[at] = lo;
        _hi[at] = hi;
        _count++;
    }

    /// <summary>fls_long: position of the most significant set bit, 1-based; 0 for 0.</summary>
    internal static int FlsLong(ulong x) => 64 - System.Numerics.BitOperations.LeadingZeroCount(x);
}
