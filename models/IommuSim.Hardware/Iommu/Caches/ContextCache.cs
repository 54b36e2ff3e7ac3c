using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;

namespace IommuSim.Hardware.Iommu.Caches;

/// <summary>
/// The context cache (VT-d spec §6.2.2): scalable-mode context entries (§9.4) tagged by source id
/// (requester id). A miss reads the root entry and then the context entry from memory (§3.4.3), two
/// dependent reads timed by the memory model; only present entries are cached. Context-cache
/// invalidation (§6.5.2.1): scalable-mode context entries carry no domain id, so a
/// domain-selective invalidation acts globally.
/// </summary>
public sealed class ContextCache : IResettable
{
    private readonly LruCache<ushort, ContextEntry> _entries;
    private readonly PhysicalMemory _mem;
    private readonly MemoryTimingModel _timing;
    private readonly TranslationTables _tables;

    public ContextCache(int entries, PhysicalMemory mem, MemoryTimingModel timing, TranslationTables tables)
    {
        _entries = new LruCache<ushort, ContextEntry>("contextCache", entries);
        _mem = mem;
        _timing = timing;
        _tables = tables;
    }

    public long Hits => _entries.Hits;
    public long Misses => _entries.Misses;
    public int Count => _entries.Count;
    /// <summary>Root- and context-entry reads on misses.</summary>
    public long FetchReads { get; private set; }

    /// <summary>
    /// The context entry of <paramref name="rid"/>: from the cache, or fetched from memory (advancing
    /// <paramref name="t"/> by the two reads and setting <paramref name="fetched"/>). Not-present entries come back as default.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public ContextEntry Lookup(ushort rid, ref long t, ref bool fetched)
    {
        if (_entries.TryGet(rid, out var ctx)) return ctx;
        fetched = true;
        ctx = Fetch(new RequesterId(rid), ref t);
        if (ctx.Present) _entries.Insert(rid, ctx);
        return ctx;
    }

    private ContextEntry Fetch(RequesterId rid, ref long t)
    {
        // Root entry, then the context entry: two dependent reads.
        t = _timing.WalkRead(t);
        FetchReads++;
        var addr = TranslationTables.LocateContextEntry(_mem, _tables.RootTableAddress, rid);
        if (addr is not ulong a) return default;
        t = _timing.WalkRead(t);
        FetchReads++;
        return ContextEntry.Decode(_mem.ReadU64(a), _mem.ReadU64(a + 8));
    }

    /// <summary>Applies a context-cache invalidate descriptor.</summary>
    public void Invalidate(in InvalidationDescriptor d)
    {
        if (d.Granularity == InvalidationGranularity.Device)
            _entries.InvalidateWhere(d.RequesterId, static (k, _, rid) => k == rid);
        else _entries.InvalidateAll();
    }

    public void Reset()
    {
        _entries.Reset();
        FetchReads = 0;
    }
}
