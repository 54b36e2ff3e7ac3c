using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Tables;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>arm_smmu_domain.stage: ARM_SMMU_DOMAIN_S1 (a CD with an ASID) or ARM_SMMU_DOMAIN_S2 (an STE with a VMID).</summary>
public enum ArmSmmuStage { S1, S2 }

/// <summary>
/// struct arm_smmu_domain for a paging domain: a VMSAv8-64 table (io-pgtable-arm, 4 KiB granule as on a
/// 4 KiB-page host) and its tag, the ASID of a stage-1 domain (arm_smmu_domain_finalise_s1 allocates it
/// from arm_smmu_asid_xa) or the VMID of a stage-2 one (finalise_s2, from the vmid ida). A NEST_PARENT
/// domain is stage 2 (arm_smmu_domain_alloc_paging_flags), so a guest's stage 1 can nest over it.
/// map_pages writes leaves and sends nothing (the SMMU caches no invalid entries); unmap_pages +
/// iotlb_sync clear them and invalidate by address (TLBI_NH_VA / TLBI_S2_IPA), the ATCs of ATS masters
/// (ATC_INV), then wait for CMD_SYNC.
/// </summary>
public sealed class ArmSmmuDomain : IommuPagingDomain
{
    private readonly ArmSmmuV3Driver _driver;

    internal ArmSmmuDomain(ArmSmmuV3Driver driver, ArmSmmuStage stage, ushort tag, VmsaPageTable table, int maxLeafShift,
        bool nestParent, bool dirtyCapable) : base(tag, nestParent, dirtyCapable)
    {
        _driver = driver;
        Stage = stage;
        Table = table;
        MaxLeafShift = maxLeafShift;
        DirtyTracking = dirtyCapable; // arm_smmu_set_dirty_tracking has nothing to do: HTTU is on from allocation
    }

    public ArmSmmuStage Stage { get; }
    /// <summary>The driver that owns the domain (its invalidations, its command queue).</summary>
    public ArmSmmuV3Driver Driver => _driver;
    /// <summary>The stage-1 ASID (CD.ASID, TLBI_NH_* tag); 0 for a stage-2 domain.</summary>
    public ushort Asid => Stage == ArmSmmuStage.S1 ? DomainId : (ushort)0;
    /// <summary>The stage-2 VMID (STE.S2VMID, TLBI_S2_IPA tag); 0 for a stage-1 domain.</summary>
    public ushort Vmid => Stage == ArmSmmuStage.S2 ? DomainId : (ushort)0;
    public VmsaPageTable Table { get; }
    /// <summary>Largest leaf (log2 bytes) the domain uses when alignment allows: 12, 21 or 30.</summary>
    public int MaxLeafShift { get; }

    public override ulong ApertureLast => Table.MaxInput;

    /// <summary>4 KiB pages, 2 MiB and 1 GiB blocks (SMMU_IDR5 GRAN4K on a 4 KiB host, arm_smmu_device_hw_probe).</summary>
    public override ulong PgsizeBitmap => 0x1000UL | (MaxLeafShift >= 21 ? 0x20_0000UL : 0) | (MaxLeafShift >= 30 ? 0x4000_0000UL : 0);

    public override void Map(ulong iova, ulong pa, ulong length, Access prot, bool allowLargePages)
        => Table.Map(iova, pa, length, prot, allowLargePages ? MaxLeafShift : 12);

    /// <summary>
    /// Clears the leaves of [iova, iova + length) and invalidates them. The kernel's gather holds one page size
    /// (iommu_iotlb_gather_add_page syncs when the size changes or the range is disjoint), so each run of
    /// contiguous leaves of one size is invalidated with that size as the granule (TTL and per-granule commands
    /// depend on it).
    /// </summary>
    public override ulong Unmap(ulong iova, ulong length)
    {
        ulong removed = 0, va = iova, end = iova + length;
        ulong runStart = 0, runEnd = 0;
        int runShift = 0;
        while (va < end)
        {
            var (entry, level) = Table.FindLeaf(va);
            int shift = Table.Granule.LeafShift(Math.Max(level, Table.StartLevel));
            ulong next = (va & ~((1UL << shift) - 1)) + (1UL << shift);
            if (entry != 0)
            {
                if (runShift != 0 && (shift != runShift || va != runEnd))
                {
                    removed += UnmapRun(runStart, runEnd - runStart, runShift);
                    runShift = 0;
                }
                if (runShift == 0) { runStart = va; runShift = shift; }
                runEnd = Math.Min(next, end);
            }
            va = next;
        }
        if (runShift != 0) removed += UnmapRun(runStart, runEnd - runStart, runShift);
        return removed;
    }

    private ulong UnmapRun(ulong iova, ulong length, int leafShift)
    {
        ulong removed = Table.Unmap(iova, length);
        if (removed > 0) _driver.InvalidateRange(this, iova, length, leafShift);
        return removed;
    }

    public override void ClearDirty(ulong iova, ulong length)
    {
        for (ulong va = iova & ~0xFFFUL; va < iova + length; va += 0x1000) Table.ReadAndClearDirty(va);
    }

    /// <summary>The CD of a stage-1 domain (arm_smmu_make_s1_cd): 48-bit input, 4 KiB granule, 48-bit IPS,
    /// faults recorded (R) and terminated (A), HA/HD for a dirty-tracking domain.</summary>
    internal ContextDescriptor MakeCd() => new()
    {
        Valid = true, T0Sz = (byte)(64 - Table.InputBits), Tg0 = Table.Granule, Ips = 5, Aa64 = true,
        HardwareAccess = DirtyCapable, HardwareDirty = DirtyCapable, Record = true, Abort = true, Asid = Asid, Ttb0 = Table.Root,
    };
}

/// <summary>arm_smmu_identity_domain: the STE bypasses translation (STRTAB_STE_0_CFG_BYPASS).</summary>
public sealed class ArmSmmuIdentityDomain() : IommuDomain(0)
{
    public override IommuDomainType Type => IommuDomainType.Identity;
}

/// <summary>arm_smmu_blocked_domain: the STE aborts every transaction (STRTAB_STE_0_CFG_ABORT).</summary>
public sealed class ArmSmmuBlockedDomain() : IommuDomain(0)
{
    public override IommuDomainType Type => IommuDomainType.Blocked;
}
