namespace IommuSim.Hardware.Smmu;

public sealed partial class SmmuUnit
{
    // Pages unmapped by software but not yet covered by a TLBI (lazy invalidation), by (VMID, ASID, page).
    private readonly HashSet<(ushort Vmid, ushort Asid, ulong Page)> _stale = [];
    // The TLBI being applied, for one cached predicate (no closure per command).
    private ushort? _staleVmid, _staleAsid;
    private ulong _staleP0, _staleP1;
    private Predicate<(ushort Vmid, ushort Asid, ulong Page)>? _staleCoveredCache;
    private Predicate<(ushort Vmid, ushort Asid, ulong Page)> _staleCovered => _staleCoveredCache ??= s =>
        (_staleVmid is null || s.Vmid == _staleVmid) && (_staleAsid is null || s.Asid == _staleAsid) && s.Page >= _staleP0 && s.Page <= _staleP1;

    /// <summary>Translations served from a TLB entry of a page software had unmapped but not yet invalidated
    /// (<c>security.staleTranslationsUsed</c>, as the VT-d IOMMU counts them).</summary>
    public long StaleTranslationsUsed { get; private set; }

    /// <summary>
    /// Statistics only: [iova, iova+bytes) of the translation regime (<paramref name="vmid"/>, <paramref name="asid"/>)
    /// was unmapped and may still be cached; hits on it count as stale until a TLBI covers it. It does not change
    /// what the SMMU does.
    /// </summary>
    public void NoteUnmappedPendingInvalidation(ushort vmid, ushort asid, ulong iova, ulong bytes)
    {
        for (ulong p = iova >> 12; p <= (iova + bytes - 1) >> 12; p++) _stale.Add((vmid, asid, p));
    }

    private void CountIfStale(ushort vmid, ushort asid, ulong address)
    {
        if (_stale.Contains((vmid, asid, address >> 12))) StaleTranslationsUsed++;
    }

    /// <summary>What a TLBI covers is no longer stale. <paramref name="asid"/> null: every ASID of the VMID;
    /// <paramref name="vmid"/> null: everything.</summary>
    private void StaleInvalidated(ushort? vmid, ushort? asid, ulong first = 0, ulong last = ulong.MaxValue)
    {
        if (_stale.Count == 0) return;
        _staleVmid = vmid; _staleAsid = asid; _staleP0 = first >> 12; _staleP1 = last >> 12;
        _stale.RemoveWhere(_staleCovered);
    }
}
