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
public sealed class PasidCache : TableEntryCache<PasidCacheTag, PasidTableEntry>
{
    public PasidCache(int entries, PhysicalMemory mem, MemoryTimingModel timing)
        : base("pasidCache", entries, mem, timing) { }

    /// <summary>A cached PASID-table entry of (<paramref name="rid"/>, <paramref name="pasid"/>) (counts a hit or a miss).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(ushort rid, uint pasid, out PasidTableEntry pte) => Entries.TryGet(new PasidCacheTag(rid, pasid), out pte);

    /// <summary>
    /// Fetch, first read: the PASID-directory entry of <paramref name="pasid"/> under <paramref name="ctx"/>.
    /// Returns the address of the PASID-table entry, or null when the directory entry is not present.
    /// </summary>
    public ulong? ReadDirectoryEntry(in ContextEntry ctx, uint pasid)
    {
        FetchReads++;
        return TranslationTables.LocatePasidEntry(Mem, ctx, pasid);
    }

    /// <summary>Fetch, second read: the PASID-table entry at <paramref name="address"/>; a present one is cached.</summary>
    public PasidTableEntry ReadTableEntry(ushort rid, uint pasid, ulong address)
    {
        FetchReads++;
        var pte = PasidTableEntry.Decode(Mem.ReadU64(address), Mem.ReadU64(address + 8), Mem.ReadU64(address + 16));
        if (pte.Present) Entries.Insert(new PasidCacheTag(rid, pasid), pte);
        return pte;
    }

    /// <summary>
    /// The PASID-table entry at once: cached, or fetched with both reads back to back from
    /// <paramref name="t"/> (advancing it; sets <paramref name="fetched"/>). For tests and tools; the
    /// remapping unit issues each read as its own event.
    /// </summary>
    public PasidTableEntry Lookup(ushort rid, uint pasid, in ContextEntry ctx, ref long t, ref bool fetched)
    {
        if (TryGet(rid, pasid, out var pte)) return pte;
        fetched = true;
        t = Timing.WalkRead(t);
        if (ReadDirectoryEntry(ctx, pasid) is not ulong a) return default;
        t = Timing.WalkRead(t);
        return ReadTableEntry(rid, pasid, a);
    }

    /// <summary>Applies a PASID-cache invalidate descriptor.</summary>
    public void Invalidate(in InvalidationDescriptor d)
    {
        if (d.Granularity == InvalidationGranularity.Global) Entries.InvalidateAll();
        else if (d.Granularity == InvalidationGranularity.Domain)
            Entries.InvalidateWhere(d.DomainId, static (_, v, did) => v.DomainId == did);
        else Entries.InvalidateWhere((d.DomainId, d.Pasid), static (k, v, s) => v.DomainId == s.DomainId && k.Pasid == s.Pasid);
    }
}
