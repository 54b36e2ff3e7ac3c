namespace IommuSim.Hardware.Smmu;

/// <summary>
/// Parameters of the SMMUv3 model (state lives in the blocks). Defaults are gem5's
/// <c>SMMUv3.py</c> values where gem5 has the parameter (named in each comment), so a user can put
/// the two simulators side by side; the rest say "assumption".
/// </summary>
public sealed class SmmuOptions
{
    /// <summary>SMMU clock. Assumption: 1 GHz (gem5 clocks the SMMU from its system clock domain).</summary>
    public double ClockMHz { get; set; } = 1000;
    /// <summary>Transactions in translation at once (gem5 <c>xlate_slots</c> 64).</summary>
    public int TranslationSlots { get; set; } = 64;
    public SmmuTlbOptions Tlb { get; set; } = new();
    public SmmuConfigCacheOptions ConfigCache { get; set; } = new();
    public SmmuWalkCacheOptions WalkCache { get; set; } = new();
    public SmmuWalkerOptions Walkers { get; set; } = new();
    public SmmuQueueOptions Queues { get; set; } = new();
    /// <summary>The SMMU has NVIDIA's Tegra241 CMDQV extension (VINTFs with guest-owned VCMDQs, as on Grace).
    /// Assumption: off (a plain SMMUv3, like gem5's).</summary>
    public bool Tegra241Cmdqv { get; set; }
    /// <summary>
    /// SMMU_IDR3.RIL: the SMMU takes range TLBIs (TLBI_NH_VA / TLBI_S2_IPA with NUM, SCALE, TG, TTL; SMMUv3.2). Linux
    /// (__arm_smmu_tlb_inv_range) then sends one command per five-bit group of an unmap's page count instead of one per
    /// page. Assumption: on (SMMUv3.2+ parts such as Arm's MMU-700 have it; the model's unmap path was built with it, so
    /// earlier results are unchanged). gem5's <c>SMMUv3.py</c> has <c>smmu_idr3 = 0</c> (no RIL): the gem5 preset sets false.
    /// </summary>
    public bool RangeInvalidation { get; set; } = true;
    /// <summary>
    /// Not hardware: what the Linux arm-smmu-v3 driver model does with a PCIe page request it reads from the PRI queue.
    /// <c>deny</c> (default) is mainline Linux: arm_smmu_handle_ppr logs "unexpected PRI request received" and answers
    /// the group with CMD_PRI_RESP DENY, so PRI-based demand paging cannot work. <c>iopf</c> follows the arm-smmu-v3
    /// SVA/PRI patch series, which reports it to iommu_report_device_fault like intel-iommu does.
    /// </summary>
    public string DriverPri { get; set; } = "deny";
    public static readonly string[] DriverPriModes = ["deny", "iopf"];

    public IEnumerable<string> Validate(string path)
    {
        if (!(ClockMHz >= 0.001 && ClockMHz <= 100_000)) yield return $"{path}:clockMHz = {ClockMHz}: must be 0.001..100000";
        if (Array.IndexOf(DriverPriModes, DriverPri) < 0) yield return $"{path}:driverPri = {DriverPri}: must be deny or iopf";
        if (TranslationSlots is < 1 or > 4096) yield return $"{path}:translationSlots = {TranslationSlots}: must be 1..4096";
        if (Tlb.Entries < 0 || (Tlb.Entries > 0 && (Tlb.Ways < 1 || Tlb.Entries % Tlb.Ways != 0 || !IsPowerOfTwo(Tlb.Entries / Tlb.Ways))))
            yield return $"{path}:tlb = {Tlb.Entries} entries × {Tlb.Ways} ways: entries must be ways × a power of two";
        if (ConfigCache.Entries is < 0 or > 1 << 16) yield return $"{path}:configCache:entries = {ConfigCache.Entries}: must be 0..65536";
        foreach (var (name, v) in WalkCache.Levels())
            if (v is < 0 or > 1 << 16) yield return $"{path}:walkCache:{name} = {v}: must be 0..65536";
        if (Walkers.Count is < 1 or > 256) yield return $"{path}:walkers:count = {Walkers.Count}: must be 1..256";
        foreach (var (name, v) in Queues.Log2Sizes())
            if (v is < 1 or > 19) yield return $"{path}:queues:{name} = {v}: must be 1..19 (SMMU_IDR1 queue size fields)";
    }

    private static bool IsPowerOfTwo(int v) => v > 0 && (v & (v - 1)) == 0;
}

/// <summary>The main TLB, tagged by VMID and ASID (gem5 <c>tlb_entries</c> 2048, <c>tlb_assoc</c> 4, <c>tlb_lat</c> 3).</summary>
public sealed class SmmuTlbOptions
{
    public int Entries { get; set; } = 2048;
    public int Ways { get; set; } = 4;
    public int LookupCycles { get; set; } = 3;
}

/// <summary>The configuration cache of STE + CD per (StreamID, SubstreamID) (gem5 <c>cfg_entries</c> 64, <c>cfg_lat</c> 3).</summary>
public sealed class SmmuConfigCacheOptions
{
    public int Entries { get; set; } = 64;
    public int LookupCycles { get; set; } = 3;
}

/// <summary>
/// Per-stage, per-level walk caches of table pointers (gem5 <c>walk_S1L0..S1L3</c> 4/28/348/4,
/// <c>walk_S2L0..S2L3</c> 4/28/92/4, <c>walk_lat</c> 4) and the IPA cache of stage-2 translations of
/// stage-1 table addresses (gem5 <c>ipa_entries</c> 128; gem5 leaves it disabled by default, the
/// model enables it because nested walks are what it measures; set 0 to match gem5).
/// </summary>
public sealed class SmmuWalkCacheOptions
{
    public bool Enabled { get; set; } = true;
    public int S1L0 { get; set; } = 4;
    public int S1L1 { get; set; } = 28;
    public int S1L2 { get; set; } = 348;
    public int S1L3 { get; set; } = 4;
    public int S2L0 { get; set; } = 4;
    public int S2L1 { get; set; } = 28;
    public int S2L2 { get; set; } = 92;
    public int S2L3 { get; set; } = 4;
    public int IpaCacheEntries { get; set; } = 128;
    public int LookupCycles { get; set; } = 4;

    /// <summary>Entries of the stage's cache at <paramref name="level"/> (0–3).</summary>
    public int EntriesAt(int stage, int level) => (stage, level) switch
    {
        (1, 0) => S1L0, (1, 1) => S1L1, (1, 2) => S1L2, (1, 3) => S1L3,
        (2, 0) => S2L0, (2, 1) => S2L1, (2, 2) => S2L2, _ => S2L3,
    };

    public IEnumerable<(string Name, int Value)> Levels()
    {
        yield return ("s1L0", S1L0); yield return ("s1L1", S1L1); yield return ("s1L2", S1L2); yield return ("s1L3", S1L3);
        yield return ("s2L0", S2L0); yield return ("s2L1", S2L1); yield return ("s2L2", S2L2); yield return ("s2L3", S2L3);
        yield return ("ipaCacheEntries", IpaCacheEntries);
    }
}

/// <summary>Concurrent table walks (gem5 <c>ptw_slots</c> 16); misses to a page being walked join that walk.</summary>
public sealed class SmmuWalkerOptions
{
    public int Count { get; set; } = 16;
    public bool Coalesce { get; set; } = true;
}

/// <summary>
/// The in-memory queues (sizes as log2 entries, SMMU_IDR1.CMDQS/EVENTQS/PRIQS; gem5's IDR1 gives
/// CMDQS = 7) and the command consumer's timing. Assumptions: <c>cyclesPerCommand</c> 64 (the same
/// as the VT-d model's descriptor cost), <c>atcInvalidateRoundTripNs</c> 1000 (the device-TLB round
/// trip of the VT-d model), events and PRI queues 2^7 entries.
/// </summary>
public sealed class SmmuQueueOptions
{
    public int CommandQueueLog2 { get; set; } = 7;
    public int EventQueueLog2 { get; set; } = 7;
    public int PriQueueLog2 { get; set; } = 7;
    public int CyclesPerCommand { get; set; } = 64;
    public double AtcInvalidateRoundTripNs { get; set; } = 1000;

    public IEnumerable<(string Name, int Value)> Log2Sizes()
    {
        yield return ("commandQueueLog2", CommandQueueLog2);
        yield return ("eventQueueLog2", EventQueueLog2);
        yield return ("priQueueLog2", PriQueueLog2);
    }
}
