namespace IommuSim.Hardware.Smmu;

public sealed partial class SmmuUnit
{
    // Pages unmapped by software but not yet covered by a TLBI (lazy invalidation), by (VMID, ASID, page).
    private readonly HashSet<(ushort Vmid, ushort Asid, ulong Page)> _stale = [];

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
        ulong p0 = first >> 12, p1 = last >> 12;
        _stale.RemoveWhere(s => (vmid is null || s.Vmid == vmid) && (asid is null || s.Asid == asid) && s.Page >= p0 && s.Page <= p1);
    }
}
