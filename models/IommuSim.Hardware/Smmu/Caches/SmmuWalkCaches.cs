using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.Iommu.Caches;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.PageTables;

namespace IommuSim.Hardware.Smmu.Caches;

/// <summary>Tag of a walk-cache entry: the translation regime (VMID and, for stage 1, ASID), the
/// table's granule and the input-address bits above the level's shift.</summary>
public readonly record struct SmmuWalkTag(ushort Vmid, ushort Asid, byte Granule, ulong Tag);

/// <summary>Tag of an IPA-cache entry: the stage-2 translation of one IPA page (a stage-1 table's address).</summary>
public readonly record struct IpaCacheTag(ushort Vmid, ulong IpaPage);

/// <summary>A cached stage-2 translation of a stage-1 table page.</summary>
public readonly record struct IpaCacheEntry(ulong PaPage, Access Access);

/// <summary>
/// The SMMU's walk caches: for each stage and level 0–2 a cache of table descriptors (the address of
/// the next-level table), so a hit at level L lets the walk continue at level L + 1; plus the IPA
/// cache of stage-2 translations of stage-1 table addresses for nested walks. Level-3 caches
/// (gem5's S1L3/S2L3) would hold leaves, which the TLB holds here, so they are not used.
/// Fully associative LRU per level (gem5: 4-way, round robin).
/// </summary>
public sealed class SmmuWalkCaches : IResettable
{
    private readonly LruCache<SmmuWalkTag, ulong>[] _s1 = new LruCache<SmmuWalkTag, ulong>[3];
    private readonly LruCache<SmmuWalkTag, ulong>[] _s2 = new LruCache<SmmuWalkTag, ulong>[3];
    private readonly LruCache<IpaCacheTag, IpaCacheEntry> _ipa;

    public SmmuWalkCaches(SmmuWalkCacheOptions options)
    {
        Enabled = options.Enabled;
        for (int l = 0; l < 3; l++)
        {
            _s1[l] = new LruCache<SmmuWalkTag, ulong>($"s1.l{l}", options.Enabled ? options.EntriesAt(1, l) : 0);
            _s2[l] = new LruCache<SmmuWalkTag, ulong>($"s2.l{l}", options.Enabled ? options.EntriesAt(2, l) : 0);
        }
        _ipa = new LruCache<IpaCacheTag, IpaCacheEntry>("ipaCache", options.Enabled ? options.IpaCacheEntries : 0);
    }

    public bool Enabled { get; }
    public long Hits { get; private set; }
    public long Misses { get; private set; }
    private readonly long[] _levelMisses = new long[3];

    /// <summary>Lookups (both stages) that missed the level-<paramref name="level"/> cache (0–2) while that level exists in the
    /// table; a lookup that hits at level L missed every deeper level first, as VT-d's per-level paging-structure-cache counts.</summary>
    public long LevelMisses(int level) => _levelMisses[level];
    public long IpaCacheHits => _ipa.Hits;
    public long IpaCacheMisses => _ipa.Misses;

    private LruCache<SmmuWalkTag, ulong>[] Of(SmmuStage stage) => stage == SmmuStage.Stage1 ? _s1 : _s2;

    /// <summary>The deepest cached table for <paramref name="address"/>: the level to continue at and its
    /// table, or (start level, root) on a miss. One hit or miss counted per lookup.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public (int Level, ulong Table) Lookup(SmmuStage stage, ushort vmid, ushort asid, Granule g, int startLevel, ulong address, ulong root)
    {
        if (!Enabled) return (startLevel, root);
        var caches = Of(stage);
        for (int l = 2; l >= startLevel; l--)
        {
            if (caches[l].TryGetIfPresent(new SmmuWalkTag(vmid, asid, (byte)g, address >> g.LevelShift(l)), out ulong table))
            {
                Hits++;
                return (l + 1, table);
            }
            _levelMisses[l]++;
        }
        Misses++;
        return (startLevel, root);
    }

    /// <summary>Caches the table descriptor read at <paramref name="level"/> (pointing at <paramref name="nextTable"/>).</summary>
    public void Fill(SmmuStage stage, ushort vmid, ushort asid, Granule g, int level, ulong address, ulong nextTable)
    {
        if (!Enabled || level > 2) return;
        Of(stage)[level].Insert(new SmmuWalkTag(vmid, asid, (byte)g, address >> g.LevelShift(level)), nextTable);
    }

    public bool LookupIpa(ushort vmid, ulong ipa, out IpaCacheEntry entry)
    {
        if (!Enabled) { entry = default; return false; }
        return _ipa.TryGet(new IpaCacheTag(vmid, ipa >> 12), out entry);
    }

    public void FillIpa(ushort vmid, ulong ipa, ulong pa, Access access)
    {
        if (Enabled) _ipa.Insert(new IpaCacheTag(vmid, ipa >> 12), new IpaCacheEntry(pa >> 12, access));
    }

    /// <summary>Stage-1 walk-cache entries of an ASID (TLBI_NH_ASID; <paramref name="asid"/> null: all of the VMID).</summary>
    public int InvalidateStage1(ushort vmid, ushort? asid)
    {
        int n = 0;
        foreach (var c in _s1) n += c.InvalidateWhere((vmid, asid), static (k, _, s) => k.Vmid == s.vmid && (s.asid is null || k.Asid == s.asid));
        return n;
    }

    /// <summary>Stage-1 entries on the path to [first, last] (TLBI_NH_VA without the leaf hint): an entry of
    /// level L names the table covering 2^shift(L) bytes of input, which must overlap the range.</summary>
    public int InvalidateStage1Range(ushort vmid, ushort? asid, ulong first, ulong last)
    {
        int n = 0;
        for (int l = 0; l < 3; l++)
            n += _s1[l].InvalidateWhere((vmid, asid, first, last, l), static (k, _, s) => k.Vmid == s.vmid
                && (s.asid is null || k.Asid == s.asid)
                && k.Tag >= s.first >> ((Granule)k.Granule).LevelShift(s.l) && k.Tag <= s.last >> ((Granule)k.Granule).LevelShift(s.l));
        return n;
    }

    /// <summary>Stage-2 walk-cache entries and IPA-cache entries of the VMID (TLBI_S2_IPA without leaf, S12_VMALL).</summary>
    public int InvalidateStage2(ushort vmid)
    {
        int n = 0;
        foreach (var c in _s2) n += c.InvalidateWhere(vmid, static (k, _, v) => k.Vmid == v);
        n += _ipa.InvalidateWhere(vmid, static (k, _, v) => k.Vmid == v);
        return n;
    }

    public int InvalidateAll()
    {
        int n = _ipa.InvalidateAll();
        foreach (var c in _s1) n += c.InvalidateAll();
        foreach (var c in _s2) n += c.InvalidateAll();
        return n;
    }

    public void Reset()
    {
        Hits = Misses = 0;
        Array.Clear(_levelMisses);
        foreach (var c in _s1) c.Reset();
        foreach (var c in _s2) c.Reset();
        _ipa.Reset();
    }
}
