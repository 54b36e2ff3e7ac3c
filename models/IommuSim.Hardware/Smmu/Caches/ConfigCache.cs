using IommuSim.Engine.Stats;
using IommuSim.Hardware.Iommu.Caches;
using IommuSim.Hardware.Smmu.Tables;

namespace IommuSim.Hardware.Smmu.Caches;

/// <summary>Tag of the configuration cache: a StreamID and, for stage-1 configurations, the SubstreamID.</summary>
public readonly record struct ConfigCacheTag(uint Sid, uint Ssid);

/// <summary>A stream's translation configuration as the SMMU holds it after reading its STE and CD.</summary>
public readonly record struct SmmuStreamConfig(StreamTableEntry Ste, ContextDescriptor Cd)
{
    public bool Stage1 => Ste.Stage1Enabled;
    public bool Stage2 => Ste.Stage2Enabled;
    public ushort Vmid => Ste.Stage2Enabled ? Ste.S2Vmid : (ushort)0;
    public ushort Asid => Ste.Stage1Enabled ? Cd.Asid : (ushort)0;
}

/// <summary>
/// The configuration cache (STE and CD per stream and substream), fully associative LRU. It is
/// edited only by CFGI_* commands: software that changes an STE or CD in memory without
/// invalidating keeps translating with the old configuration, as on hardware.
/// </summary>
public sealed class ConfigCache(SmmuConfigCacheOptions options) : IResettable
{
    private readonly LruCache<ConfigCacheTag, SmmuStreamConfig> _cache = new("configCache", options.Entries);

    public long Hits => _cache.Hits;
    public long Misses => _cache.Misses;
    public int Count => _cache.Count;

    public bool TryGet(uint sid, uint ssid, out SmmuStreamConfig config) => _cache.TryGet(new ConfigCacheTag(sid, ssid), out config);

    public void Insert(uint sid, uint ssid, in SmmuStreamConfig config) => _cache.Insert(new ConfigCacheTag(sid, ssid), config);

    /// <summary>CFGI_STE: everything cached for the stream.</summary>
    public int InvalidateStream(uint sid) => _cache.InvalidateWhere(sid, static (k, _, s) => k.Sid == s);

    /// <summary>CFGI_STE_RANGE: streams [first, last].</summary>
    public int InvalidateStreams(uint first, uint last) => _cache.InvalidateWhere((first, last), static (k, _, r) => k.Sid >= r.first && k.Sid <= r.last);

    /// <summary>CFGI_CD: one substream's CD.</summary>
    public int InvalidateSubstream(uint sid, uint ssid) => _cache.InvalidateWhere((sid, ssid), static (k, _, s) => k.Sid == s.sid && k.Ssid == s.ssid);

    /// <summary>CFGI_ALL.</summary>
    public int InvalidateAll() => _cache.InvalidateAll();

    public void Reset() => _cache.Reset();
}
