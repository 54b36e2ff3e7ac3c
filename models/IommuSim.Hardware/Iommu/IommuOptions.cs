namespace IommuSim.Hardware.Iommu;

/// <summary>Parameters of the IOMMU (config section <c>iommu</c>). Cycles are IOMMU clock cycles.</summary>
public sealed class IommuOptions
{
    /// <summary><c>vtd</c> (Intel VT-d, the default) or <c>smmuv3</c> (Arm SMMUv3, parameters under <see cref="Smmu"/>):
    /// which IOMMU sits on the PCIe path. The VT-d keys below apply to <c>vtd</c> only.</summary>
    public string Architecture { get; set; } = "vtd";

    public static readonly string[] Architectures = ["vtd", "smmuv3"];

    /// <summary>Whether the SMMUv3 model is selected.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsSmmu => Architecture == "smmuv3";

    /// <summary>IOMMU clock (MHz).</summary>
    public double ClockMHz { get; set; } = 1500;

    /// <summary>Translation requests the IOMMU accepts before it back-pressures the root port.</summary>
    public int InputQueueDepth { get; set; } = 64;

    /// <summary>Context- and PASID-cache lookup (cycles), pipelined before the IOTLB lookup.</summary>
    public int ContextLookupCycles { get; set; } = 1;

    /// <summary>Cycles to record a fault (fault recording register write).</summary>
    public int FaultRecordCycles { get; set; } = 20;

    public IotlbOptions Iotlb { get; set; } = new();
    public CacheOptions ContextCache { get; set; } = new();
    public CacheOptions PasidCache { get; set; } = new();
    public WalkCacheOptions WalkCaches { get; set; } = new();
    public WalkerOptions Walkers { get; set; } = new();
    public InvalidationOptions Invalidation { get; set; } = new();
    /// <summary>The SMMUv3 model's parameters (config section <c>iommu.smmu</c>; docs/smmuv3.md).</summary>
    public Smmu.SmmuOptions Smmu { get; set; } = new();

    public void Validate(string path, List<string> errors)
    {
        if (!Architectures.Contains(Architecture)) errors.Add($"{path}:architecture = {Architecture}: allowed values are {string.Join(", ", Architectures)}");
        errors.AddRange(Smmu.Validate($"{path}:smmu"));
        if (!(ClockMHz > 0 && ClockMHz <= 100_000)) errors.Add($"{path}:clockMHz = {ClockMHz}: must be in (0, 100000] MHz");
        if (InputQueueDepth is < 1 or > 1 << 20) errors.Add($"{path}:inputQueueDepth = {InputQueueDepth}: must be in [1, 1048576]");
        if (ContextLookupCycles is < 0 or > 10_000) errors.Add($"{path}:contextLookupCycles = {ContextLookupCycles}: must be in [0, 10000]");
        if (FaultRecordCycles is < 0 or > 100_000) errors.Add($"{path}:faultRecordCycles = {FaultRecordCycles}: must be in [0, 100000]");
        Iotlb.Validate($"{path}:iotlb", errors);
        ContextCache.Validate($"{path}:contextCache", errors);
        PasidCache.Validate($"{path}:pasidCache", errors);
        WalkCaches.Validate($"{path}:walkCaches", errors);
        Walkers.Validate($"{path}:walkers", errors);
        Invalidation.Validate($"{path}:invalidation", errors);
    }
}

/// <summary>IOTLB geometry. Default 16 sets × 4 ways = 64 entries: the reach (64 × 4 KiB = 256 KiB)
/// that pcie-bench measures on Xeon E5 v4, whose bandwidth knee lies between 256 and 512 KiB
/// (docs/calibration.md). The 4-way split is an assumption (Intel publishes no geometry).</summary>
public sealed class IotlbOptions
{
    public int Sets { get; set; } = 16;
    public int Ways { get; set; } = 4;
    /// <summary>Optional total; when given, sets × ways must equal it.</summary>
    public int? Entries { get; set; }
    /// <summary><c>lru</c>, <c>plru</c>, <c>fifo</c> or <c>random</c>.</summary>
    public string Replacement { get; set; } = "lru";
    public int LookupCycles { get; set; } = 2;

    public static readonly string[] Policies = ["lru", "plru", "fifo", "random"];

    public void Validate(string path, List<string> errors)
    {
        if (Sets < 1 || (Sets & (Sets - 1)) != 0 || Sets > 1 << 16) errors.Add($"{path}:sets = {Sets}: must be a power of two in [1, 65536]");
        if (Ways is < 1 or > 1024) errors.Add($"{path}:ways = {Ways}: must be in [1, 1024]");
        if (Entries is int e && (long)Sets * Ways != e) errors.Add($"{path}:ways = {Ways}: sets*ways must equal entries ({e})");
        if (!Policies.Contains(Replacement)) errors.Add($"{path}:replacement = {Replacement}: allowed values are {string.Join(", ", Policies)}");
        if (Replacement == "plru" && (Ways & (Ways - 1)) != 0) errors.Add($"{path}:ways = {Ways}: plru needs a power-of-two number of ways");
        if (LookupCycles is < 0 or > 10_000) errors.Add($"{path}:lookupCycles = {LookupCycles}: must be in [0, 10000]");
    }
}

/// <summary>A fully associative LRU cache (context cache, PASID cache).</summary>
public sealed class CacheOptions
{
    public int Entries { get; set; } = 64;

    public void Validate(string path, List<string> errors)
    {
        if (Entries is < 0 or > 1 << 20) errors.Add($"{path}:entries = {Entries}: must be in [0, 1048576] (0 disables the cache)");
    }
}

/// <summary>Paging-structure caches: one fully associative cache per level and stage, plus the
/// nested TLB (stage-2 translations of stage-1 table addresses).</summary>
public sealed class WalkCacheOptions
{
    public bool Enabled { get; set; } = true;
    /// <summary>Entries of each non-leaf level above the PDE (PDPTE, PML4E, PML5E caches). Default 32: the
    /// size Rubin et al. (SOSP'24) assume for the upper levels; Intel publishes none (a PDPTE entry covers 1 GiB).</summary>
    public int EntriesPerLevel { get; set; } = 32;
    /// <summary>Entries of the PDE cache (pointers to last-level tables, 2 MiB of IOVA each). Default 64:
    /// the low end of the published 64–128-entry estimate for Cascade Lake (issue 11).</summary>
    public int PdeEntries { get; set; } = 64;
    /// <summary>Entries of the nested TLB; default: same as <see cref="EntriesPerLevel"/>.</summary>
    public int? NestedTlbEntries { get; set; }
    public int LookupCycles { get; set; } = 1;

    public void Validate(string path, List<string> errors)
    {
        if (EntriesPerLevel is < 1 or > 1 << 16) errors.Add($"{path}:entriesPerLevel = {EntriesPerLevel}: must be in [1, 65536]");
        if (PdeEntries is < 1 or > 1 << 16) errors.Add($"{path}:pdeEntries = {PdeEntries}: must be in [1, 65536]");
        if (NestedTlbEntries is int n && (n < 0 || n > 1 << 16)) errors.Add($"{path}:nestedTlbEntries = {n}: must be in [0, 65536]");
        if (LookupCycles is < 0 or > 10_000) errors.Add($"{path}:lookupCycles = {LookupCycles}: must be in [0, 10000]");
    }
}

public sealed class WalkerOptions
{
    /// <summary>Concurrent page walks. Default 5: Intel publishes no count; 5 is what the pcie-bench
    /// Broadwell calibration fits (≈ 20 M IOTLB misses/s at ≈ 280 ns per walk, docs/calibration.md).</summary>
    public int Count { get; set; } = 5;
    /// <summary>A miss on a page already being walked joins that walk.</summary>
    public bool Coalesce { get; set; } = true;

    public void Validate(string path, List<string> errors)
    {
        if (Count is < 1 or > 1024) errors.Add($"{path}:count = {Count}: must be in [1, 1024]");
    }
}

public sealed class InvalidationOptions
{
    public int QueueEntries { get; set; } = 256;
    /// <summary>Cycles to process one descriptor (tens to hundreds on real parts).</summary>
    public int DescriptorCycles { get; set; } = 64;
    /// <summary>Round trip of a device-TLB invalidation over PCIe until the device answers (ns).</summary>
    public double DeviceTlbRoundTripNs { get; set; } = 1000;

    public void Validate(string path, List<string> errors)
    {
        if (QueueEntries is < 1 or > 1 << 16) errors.Add($"{path}:queueEntries = {QueueEntries}: must be in [1, 65536]");
        if (DescriptorCycles is < 0 or > 1_000_000) errors.Add($"{path}:descriptorCycles = {DescriptorCycles}: must be in [0, 1000000]");
        if (!(DeviceTlbRoundTripNs >= 0 && DeviceTlbRoundTripNs <= 1e7)) errors.Add($"{path}:deviceTlbRoundTripNs = {DeviceTlbRoundTripNs}: must be in [0, 1e7]");
    }
}
