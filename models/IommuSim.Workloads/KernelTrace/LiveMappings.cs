namespace IommuSim.Workloads.KernelTrace;

/// <summary>
/// The IOVA ranges a trace has mapped and not yet unmapped, each tagged with the buffer (map call)
/// it came from. Ranges never overlap. An unmap may cover several ranges or part of one (iommu_unmap
/// works on any page-aligned range), so removal trims and splits. Memory is bounded by the trace's
/// live mappings, not by its length.
/// </summary>
public sealed class LiveMappings
{
    public readonly record struct Entry(ulong Start, ulong End, int Buffer);

    private sealed class ByStart : IComparer<Entry>
    {
        public int Compare(Entry x, Entry y) => x.Start.CompareTo(y.Start);
    }

    private readonly SortedSet<Entry> _set = new(new ByStart());
    private readonly List<Entry> _scratch = [];

    public int Count => _set.Count;
    public int MaxCount { get; private set; }

    /// <summary>The ranges intersecting [a, b), highest first, into <paramref name="into"/> (cleared first).</summary>
    public void Intersecting(ulong a, ulong b, List<Entry> into)
    {
        into.Clear();
        if (_set.Count == 0 || b <= a) return;
        var min = _set.Min;
        if (min.Start >= b) return;
        // Ranges are disjoint and sorted, so their ends are sorted too: walk down from the last start below b.
        foreach (var e in _set.GetViewBetween(min, new Entry(b - 1, 0, 0)).Reverse())
        {
            if (e.End <= a) break;
            into.Add(e);
        }
    }

    public bool Overlaps(ulong a, ulong b, out Entry hit)
    {
        Intersecting(a, b, _scratch);
        hit = _scratch.Count > 0 ? _scratch[^1] : default;
        return _scratch.Count > 0;
    }

    public void Add(ulong a, ulong b, int buffer)
    {
        if (!_set.Add(new Entry(a, b, buffer))) throw new InvalidOperationException($"range 0x{a:x} is already live");
        MaxCount = Math.Max(MaxCount, _set.Count);
    }

    /// <summary>
    /// Removes [a, b) from every range it intersects (trimming or splitting them). Calls
    /// <paramref name="pieces"/> with each affected buffer and the change in how many ranges it has
    /// (−1 removed, 0 trimmed, +1 split in two).
    /// </summary>
    public void Remove(ulong a, ulong b, Action<int, int> pieces)
    {
        Intersecting(a, b, _scratch);
        foreach (var e in _scratch)
        {
            _set.Remove(e);
            int delta = -1;
            if (e.Start < a) { _set.Add(e with { End = a }); delta++; }
            if (e.End > b) { _set.Add(e with { Start = b }); delta++; }
            pieces(e.Buffer, delta);
        }
    }
}
