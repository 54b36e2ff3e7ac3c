using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;

namespace IommuSim.Hardware.Iommu.Caches;

/// <summary>Tag of the PASID cache: requester and PASID (the DID lives in the entry).</summary>
public readonly record struct PasidCacheTag(ushort Rid, uint Pasid);

/// <summary>
/// The PASID cache (VT-d spec §6.2.3): scalable-mode PASID-table entries (§9.6) of (requester,
/// PASID). A miss reads the PASID-directory entry (§9.5) and then the PASID-table entry, two dependent
/// reads timed by the memory model; only present entries are cached. PASID-cache invalidation
/// (§6.5.2.2) selects by domain id, or by domain id and PASID.
/// </summary>
public sealed class PasidCache : IResettable
{
    private readonly LruCache<PasidCacheTag, PasidTableEntry> _entries;
    private readonly PhysicalMemory _mem;
    private readonly MemoryTimingModel _timing;

    public PasidCache(int entries, PhysicalMemory mem, MemoryTimingModel timing)
    {
        _entries = new LruCache<PasidCacheTag, PasidTableEntry>("pasidCache", entries);
        _mem = mem;
        _timing = timing;
    }

    public long Hits => _entries.Hits;
    public long Misses => _entries.Misses;
    public int Count => _entries.Count;
    /// <summary>PASID-directory and PASID-table entry reads on misses.</summary>
    public long FetchReads { get; private set; }

    /// <summary>
    /// The PASID-table entry of (<paramref name="rid"/>, <paramref name="pasid"/>) under context entry
    /// <paramref name="ctx"/>: cached, or fetched from memory (advancing <paramref name="t"/> and setting
    /// <paramref name="fetched"/>). Not-present entries come back as default.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public PasidTableEntry Lookup(ushort rid, uint pasid, in ContextEntry ctx, ref long t, ref bool fetched)
    {
        var tag = new PasidCacheTag(rid, pasid);
        if (_entries.TryGet(tag, out var pte)) return pte;
        fetched = true;
        pte = Fetch(ctx, pasid, ref t);
        if (pte.Present) _entries.Insert(tag, pte);
        return pte;
    }

    private PasidTableEntry Fetch(in ContextEntry ctx, uint pasid, ref long t)
    {
        // PASID-directory entry, then the PASID-table entry.
        t = _timing.WalkRead(t);
        FetchReads++;
        var addr = TranslationTables.LocatePasidEntry(_mem, ctx, pasid);
        if (addr is not ulong a) return default;
        t = _timing.WalkRead(t);
        FetchReads++;
        return PasidTableEntry.Decode(_mem.ReadU64(a), _mem.ReadU64(a + 8), _mem.ReadU64(a + 16));
    }

    /// <summary>Applies a PASID-cache invalidate descriptor.</summary>
    public void Invalidate(in InvalidationDescriptor d)
    {
        if (d.Granularity == InvalidationGranularity.Global) _entries.InvalidateAll();
        else if (d.Granularity == InvalidationGranularity.Domain)
            _entries.InvalidateWhere(d.DomainId, static (_, v, did) => v.DomainId == did);
        else _entries.InvalidateWhere((d.DomainId, d.Pasid), static (k, v, s) => v.DomainId == s.DomainId && k.Pasid == s.Pasid);
    }

    public void Reset()
    {
        _entries.Reset();
        FetchReads = 0;
    }
}
