namespace IommuSim.Workloads.KernelTrace;

/// <summary>
/// The IOVA ranges a trace has mapped and not yet unmapped, each tagged with the buffer (map call)
/// it came from. Ranges never overlap. An unmap may cover several ranges or part of one (iommu_unmap
/// works on any page-aligned range), so removal trims and splits. Memory is bounded by the trace's
/// live mappings, not by its length.
/// </summary>
/// <remarks>
/// A sorted array with binary search: no allocation per operation (it only grows), and inserts move
/// a few KB for the hundreds to thousands of live buffers a driver keeps. (SortedSet's range views
/// allocate, and recount their range, on every query.)
/// </remarks>
public sealed class LiveMappings
{
    public readonly record struct Entry(ulong Start, ulong End, int Buffer);

    private Entry[] _a = new Entry[64];
    private int _n;

    public int Count => _n;
    public int MaxCount { get; private set; }

    /// <summary>Index of the first range starting at or after <paramref name="x"/>.</summary>
    private int LowerBound(ulong x)
    {
        int lo = 0, hi = _n;
        while (lo < hi)
        {
            int m = (lo + hi) >>> 1;
            if (_a[m].Start < x) lo = m + 1; else hi = m;
        }
        return lo;
    }

    /// <summary>Indices [lo, hi] of the ranges intersecting [a, b); empty when lo &gt; hi.</summary>
    private (int Lo, int Hi) Span(ulong a, ulong b)
    {
        int hi = LowerBound(b) - 1;
        int lo = hi;
        // Disjoint and sorted ranges have sorted ends too: walk down while they reach past a.
        while (lo >= 0 && _a[lo].End > a) lo--;
        return (lo + 1, hi);
    }

    /// <summary>The ranges intersecting [a, b), highest first, into <paramref name="into"/> (cleared first).</summary>
    public void Intersecting(ulong a, ulong b, List<Entry> into)
    {
        into.Clear();
        if (b <= a) return;
        var (lo, hi) = Span(a, b);
        for (int k = hi; k >= lo; k--) into.Add(_a[k]);
    }

    public bool Overlaps(ulong a, ulong b, out Entry hit)
    {
        hit = default;
        if (b <= a) return false;
        var (lo, hi) = Span(a, b);
        if (lo > hi) return false;
        hit = _a[lo];
        return true;
    }

    public void Add(ulong a, ulong b, int buffer)
    {
        if (Overlaps(a, b, out var hit)) throw new InvalidOperationException($"range 0x{a:x}-0x{b:x} overlaps the live range at 0x{hit.Start:x}");
        int i = LowerBound(a);
        Resize(i, i, 1);
        _a[i] = new Entry(a, b, buffer);
        MaxCount = Math.Max(MaxCount, _n);
    }

    /// <summary>
    /// Removes [a, b) from every range it intersects (trimming or splitting them). Calls
    /// <paramref name="pieces"/> with each affected buffer and the change in how many ranges it has
    /// (−1 removed, 0 trimmed, +1 split in two).
    /// </summary>
    public void Remove(ulong a, ulong b, Action<int, int> pieces)
    {
        if (b <= a) return;
        var (lo, hi) = Span(a, b);
        if (lo > hi) return;
        var first = _a[lo];
        var last = _a[hi];
        bool left = first.Start < a, right = last.End > b;
        for (int k = lo; k <= hi; k++)
            pieces(_a[k].Buffer, -1 + (k == lo && left ? 1 : 0) + (k == hi && right ? 1 : 0));
        int keep = (left ? 1 : 0) + (right ? 1 : 0);
        Resize(lo, hi + 1, keep);
        int w = lo;
        if (left) _a[w++] = first with { End = a };
        if (right) _a[w] = last with { Start = b };
    }

    /// <summary>Replaces the entries [from, to) by <paramref name="count"/> slots (contents to be written by the caller).</summary>
    private void Resize(int from, int to, int count)
    {
        int newN = _n - (to - from) + count;
        if (newN > _a.Length) Array.Resize(ref _a, Math.Max(newN, _a.Length * 2));
        Array.Copy(_a, to, _a, from + count, _n - to);
        _n = newN;
    }
}
