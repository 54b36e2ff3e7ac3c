using IommuSim.Engine.Stats;
using IommuSim.Hardware.Memory;

namespace IommuSim.Hardware.Iommu.Caches;

/// <summary>
/// What the context cache and the PASID cache share: an LRU array of present table entries, the
/// memory they are fetched from, and the count of fetch reads. Each cache adds its own tag, its
/// fetch steps and its invalidation rules.
/// </summary>
public abstract class TableEntryCache<TKey, TEntry> : IResettable where TKey : struct, IEquatable<TKey>
{
    private protected readonly LruCache<TKey, TEntry> Entries;
    private protected readonly PhysicalMemory Mem;
    private protected readonly MemoryTimingModel Timing;

    private protected TableEntryCache(string name, int entries, PhysicalMemory mem, MemoryTimingModel timing)
    {
        Entries = new LruCache<TKey, TEntry>(name, entries);
        Mem = mem;
        Timing = timing;
    }

    public long Hits => Entries.Hits;
    public long Misses => Entries.Misses;
    public int Count => Entries.Count;
    /// <summary>Entry reads on misses (two per fetch when the first level is present).</summary>
    public long FetchReads { get; private protected set; }

    public void Reset()
    {
        Entries.Reset();
        FetchReads = 0;
    }
}
