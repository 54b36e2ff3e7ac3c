using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Iommu.Caches;

/// <summary>Tag of a paging-structure cache entry: the domain, the PASID (first stage only) and the
/// input-address bits that select the cached entry at its level (address &gt;&gt; level shift).</summary>
public readonly record struct PscTag(ushort Did, uint Pasid, ulong Tag);

/// <summary>Tag of a nested-TLB entry: stage-2 translation of one guest-physical page.</summary>
public readonly record struct NestedTlbTag(ushort Did, ulong GpaPage);

/// <summary>A cached stage-2 translation of a guest-physical page (of a stage-1 table).</summary>
public readonly record struct NestedTlbEntry(ulong HpaPage, Access Access);

/// <summary>
/// The paging-structure caches (VT-d spec §6.2.5) of both stages: for each stage, one cache per non-leaf level
/// (PDE = level 2 up to PML5E = level 5) mapping the entry's tag to the next table's address,
/// and for nested walks the nested TLB of stage-2 translations of stage-1 table addresses.
/// A hit at level L lets the walk start at level L−1. Invalidated by IOTLB and PASID-based IOTLB
/// descriptors without the invalidation hint (§6.5.2.3, §6.5.2.4). Config key: <c>iommu.walkCaches</c>.
/// </summary>
public sealed class PagingStructureCaches : IResettable
{
    private readonly LruCache<PscTag, ulong>[] _s1 = new LruCache<PscTag, ulong>[6];
    private readonly LruCache<PscTag, ulong>[] _s2 = new LruCache<PscTag, ulong>[6];
    private readonly LruCache<NestedTlbTag, NestedTlbEntry> _nestedTlb;

    public PagingStructureCaches(WalkCacheOptions options)
    {
        Enabled = options.Enabled;
        int n = options.Enabled ? options.EntriesPerLevel : 0;
        for (int l = 2; l <= 5; l++)
        {
            int entries = l == 2 && options.Enabled ? options.PdeEntries : n;
            _s1[l] = new LruCache<PscTag, ulong>($"s1.l{l}", entries);
            _s2[l] = new LruCache<PscTag, ulong>($"s2.l{l}", entries);
        }
        _nestedTlb = new LruCache<NestedTlbTag, NestedTlbEntry>("nestedTlb", options.Enabled ? options.NestedTlbEntries ?? n : 0);
    }

    public bool Enabled { get; }

    // Misses per level (both stages): a lookup that hits at level L missed every level below it.
    private readonly long[] _levelMisses = new long[6];

    /// <summary>Lookups that missed the cache of <paramref name="level"/> (2 = PDE … 5 = PML5E), both stages.</summary>
    public long LevelMisses(int level) => _levelMisses[level];
    public long Hits { get; private set; }
    public long Misses { get; private set; }
    public long NestedTlbHits => _nestedTlb.Hits;
    public long NestedTlbMisses => _nestedTlb.Misses;

    /// <summary>
    /// Deepest cached level for <paramref name="address"/> in a table of <paramref name="levels"/>
    /// levels: returns the level to continue the walk at and its table, or (levels, root) on a miss.
    /// Counts one hit or miss per lookup.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public (int Level, ulong Table) Lookup(TableStage stage, ushort did, uint pasid, ulong address, int levels, ulong root)
    {
        if (!Enabled) return (levels, root);
        var caches = stage == TableStage.First ? _s1 : _s2;
        for (int l = 2; l <= levels; l++)
        {
            if (caches[l].TryGetIfPresent(new PscTag(did, pasid, address >> PageTableFormat.IndexShift(l)), out ulong table))
            {
                Hits++;
                return (l - 1, table);
            }
            _levelMisses[l]++;
        }
        Misses++;
        return (levels, root);
    }

    /// <summary>Remember the non-leaf entry read at <paramref name="level"/> (its next-table address).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Fill(TableStage stage, ushort did, uint pasid, ulong address, int level, ulong nextTable)
    {
        if (!Enabled || level < 2) return;
        var caches = stage == TableStage.First ? _s1 : _s2;
        caches[level].Insert(new PscTag(did, pasid, address >> PageTableFormat.IndexShift(level)), nextTable);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool LookupNested(ushort did, ulong gpa, out NestedTlbEntry entry)
    {
        if (!Enabled || _nestedTlb.Capacity == 0) { entry = default; return false; }
        bool hit = _nestedTlb.TryGet(new NestedTlbTag(did, gpa >> 12), out entry);
        if (hit) Hits++; else Misses++;
        return hit;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void FillNested(ushort did, ulong gpa, ulong hpa, Access access)
    {
        if (!Enabled) return;
        _nestedTlb.Insert(new NestedTlbTag(did, gpa >> 12), new NestedTlbEntry(hpa >> 12, access));
    }

    public int InvalidateAll()
    {
        int n = _nestedTlb.InvalidateAll();
        for (int l = 2; l <= 5; l++) n += _s1[l].InvalidateAll() + _s2[l].InvalidateAll();
        return n;
    }

    /// <summary>Entries of a domain (both stages and the nested TLB).</summary>
    public int InvalidateDomain(ushort did)
    {
        int n = _nestedTlb.InvalidateWhere(did, static (k, _, d) => k.Did == d);
        for (int l = 2; l <= 5; l++)
        {
            n += _s1[l].InvalidateWhere(did, static (k, _, d) => k.Did == d);
            n += _s2[l].InvalidateWhere(did, static (k, _, d) => k.Did == d);
        }
        return n;
    }

    /// <summary>First-stage entries of one (DID, PASID), optionally only those covering [first, last].</summary>
    public int InvalidateFirstStage(ushort did, uint pasid, ulong first = 0, ulong last = ulong.MaxValue)
    {
        int n = 0;
        for (int l = 2; l <= 5; l++)
        {
            int shift = PageTableFormat.IndexShift(l);
            n += _s1[l].InvalidateWhere((did, pasid, first, last, shift), static (k, _, s) =>
                k.Did == s.did && k.Pasid == s.pasid && Overlaps(k.Tag, s.shift, s.first, s.last));
        }
        return n;
    }

    /// <summary>Second-stage entries and nested-TLB entries of a domain covering [first, last] (as input addresses).</summary>
    public int InvalidateSecondStage(ushort did, ulong first, ulong last)
    {
        int n = _nestedTlb.InvalidateWhere((did, first, last), static (k, _, s) =>
            k.Did == s.did && Overlaps(k.GpaPage, 12, s.first, s.last));
        for (int l = 2; l <= 5; l++)
        {
            int shift = PageTableFormat.IndexShift(l);
            n += _s2[l].InvalidateWhere((did, first, last, shift), static (k, _, s) =>
                k.Did == s.did && Overlaps(k.Tag, s.shift, s.first, s.last));
        }
        return n;
    }

    private static bool Overlaps(ulong tag, int shift, ulong first, ulong last)
    {
        ulong start = shift >= 64 ? 0 : tag << shift;
        ulong end = start + ((1UL << shift) - 1);
        return start <= last && end >= first;
    }

    public void Reset()
    {
        Hits = Misses = 0;
        Array.Clear(_levelMisses);
        _nestedTlb.Reset();
        for (int l = 2; l <= 5; l++) { _s1[l].Reset(); _s2[l].Reset(); }
    }
}
