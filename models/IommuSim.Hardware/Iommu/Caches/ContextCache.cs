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
public sealed class ContextCache : TableEntryCache<ushort, ContextEntry>
{
    private readonly TranslationTables _tables;

    public ContextCache(int entries, PhysicalMemory mem, MemoryTimingModel timing, TranslationTables tables)
        : base("contextCache", entries, mem, timing) => _tables = tables;

    /// <summary>A cached context entry of <paramref name="rid"/> (counts a hit or a miss).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(ushort rid, out ContextEntry ctx) => Entries.TryGet(rid, out ctx);

    /// <summary>
    /// Fetch, first read: the root entry of <paramref name="rid"/>'s bus. Returns the address of the
    /// context entry, or null when the root entry is not present. The caller times the read.
    /// </summary>
    public ulong? ReadRootEntry(ushort rid)
    {
        FetchReads++;
        return TranslationTables.LocateContextEntry(Mem, _tables.RootTableAddress, new RequesterId(rid));
    }

    /// <summary>Fetch, second read: the context entry at <paramref name="address"/>; a present one is cached.</summary>
    public ContextEntry ReadContextEntry(ushort rid, ulong address)
    {
        FetchReads++;
        var ctx = ContextEntry.Decode(Mem.ReadU64(address), Mem.ReadU64(address + 8));
        if (ctx.Present) Entries.Insert(rid, ctx);
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
        t = Timing.WalkRead(t);
        if (ReadRootEntry(rid) is not ulong a) return default;
        t = Timing.WalkRead(t);
        return ReadContextEntry(rid, a);
    }

    /// <summary>Applies a context-cache invalidate descriptor.</summary>
    public void Invalidate(in InvalidationDescriptor d)
    {
        if (d.Granularity == InvalidationGranularity.Device)
            Entries.InvalidateWhere(d.RequesterId, static (k, _, rid) => k == rid);
        else Entries.InvalidateAll();
    }
}
