using IommuSim.Engine.Stats;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Iommu;

/// <summary>
/// Statistics only (<c>security.staleTranslationsUsed</c>): pages the software has unmapped but not
/// yet invalidated (lazy mode), and how many translations the IOMMU served from such a page's cached
/// entry. An observer on the IOMMU's hooks, attached by the IOMMU when the first unmapped-but-cached
/// page is noted, so runs without deferred invalidation do not pay for it.
/// </summary>
internal sealed class StaleTranslationTracker : HardwareObserver, IResettable
{
    private readonly HashSet<(ushort Did, ulong Page)> _stale = [];

    public long Used { get; private set; }

    public void Note(ushort did, ulong iova, ulong bytes)
    {
        for (ulong p = iova >> 12; p <= (iova + bytes - 1) >> 12; p++) _stale.Add((did, p));
    }

    public override void OnTranslationFromIotlb(Tlp tlp)
    {
        if (_stale.Count > 0 && _stale.Contains((tlp.Vtd.Context.DomainId, tlp.Address >> 12))) Used++;
    }

    /// <summary>An IOTLB invalidation covers the pages it names: they are no longer stale.</summary>
    public override void OnInvalidationApplied(in InvalidationDescriptor d, long startPs)
    {
        if (_stale.Count == 0) return;
        switch (d.Type)
        {
            case InvalidationType.Iotlb:
                switch (d.Granularity)
                {
                    case InvalidationGranularity.Global: _stale.Clear(); break;
                    case InvalidationGranularity.Domain: RemoveDomain(d.DomainId); break;
                    default: RemoveRange(d); break;
                }
                break;
            case InvalidationType.PasidIotlb:
                if (d.Granularity == InvalidationGranularity.Page) RemoveRange(d);
                else RemoveDomain(d.DomainId);
                break;
        }
    }

    private void RemoveDomain(ushort did) => _stale.RemoveWhere(s => s.Did == did);

    private void RemoveRange(in InvalidationDescriptor d)
    {
        var (firstByte, lastByte) = d.AddressRange();
        ulong first = firstByte >> 12, last = lastByte >> 12;
        ushort did = d.DomainId;
        _stale.RemoveWhere(s => s.Did == did && s.Page >= first && s.Page <= last);
    }

    public void Reset() => Used = 0;
}
