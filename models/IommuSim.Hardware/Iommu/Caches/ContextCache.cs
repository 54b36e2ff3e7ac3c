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

    /// <summary>A cached context entry of <paramref name="rid"/> (counts a hit or a miss).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(ushort rid, out ContextEntry ctx) => _entries.TryGet(rid, out ctx);

    /// <summary>
    /// Fetch, first read: the root entry of <paramref name="rid"/>'s bus. Returns the address of the
    /// context entry, or null when the root entry is not present. The caller times the read.
    /// </summary>
    public ulong? ReadRootEntry(ushort rid)
    {
        FetchReads++;
        return TranslationTables.LocateContextEntry(_mem, _tables.RootTableAddress, new RequesterId(rid));
    }

    /// <summary>Fetch, second read: the context entry at <paramref name="address"/>; a present one is cached.</summary>
    public ContextEntry ReadContextEntry(ushort rid, ulong address)
    {
        FetchReads++;
        var ctx = ContextEntry.Decode(_mem.ReadU64(address), _mem.ReadU64(address + 8));
        if (ctx.Present) _entries.Insert(rid, ctx);
        return ctx;
    }

    /// <summary>
    /// The context entry of <paramref name="rid"/> at once: from the cache, or fetched with both reads
    /// back to back from <paramref name="t"/> (advancing it; sets <paramref name="fetched"/>). For tests and
    /// tools; the remapping unit issues each read as its own event (<see cref="IommuUnit"/>), so that a
    /// dependent read takes memory bandwidth when it is issued, not before.
    /// </summary>
    public ContextEntry Lookup(ushort rid, ref long t, ref bool fetched)
    {
        if (TryGet(rid, out var ctx)) return ctx;
        fetched = true;
        t = _timing.WalkRead(t);
        if (ReadRootEntry(rid) is not ulong a) return default;
        t = _timing.WalkRead(t);
        return ReadContextEntry(rid, a);
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
