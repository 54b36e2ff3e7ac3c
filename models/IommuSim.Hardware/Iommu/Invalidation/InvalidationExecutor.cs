using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Iommu.Caches;

namespace IommuSim.Hardware.Iommu.Invalidation;

/// <summary>
/// What each queued-invalidation descriptor does to the remapping hardware's caches when the
/// <see cref="InvalidationQueue"/> finishes it (VT-d spec §6.5.2.1–§6.5.2.9): context-cache and
/// PASID-cache invalidation, IOTLB and PASID-based IOTLB invalidation (with the paging-structure
/// caches unless the invalidation hint says leaf only), device-TLB and PASID-based device-TLB
/// invalidation forwarded to the ATS endpoint (§4.3; the wait includes its round trip), and page
/// group responses forwarded to the device that asked (§7.7).
/// </summary>
public sealed class InvalidationExecutor : IInvalidationTarget, IResettable
{
    private readonly ContextCache _context;
    private readonly PasidCache _pasid;
    private readonly Iotlb _iotlb;
    private readonly PagingStructureCaches _psc;
    private readonly Dictionary<ushort, IAtsEndpoint> _endpoints = [];
    private readonly long _deviceTlbRoundTripPs;

    public InvalidationExecutor(InvalidationOptions options, ContextCache context, PasidCache pasid, Iotlb iotlb,
        PagingStructureCaches psc)
    {
        _context = context;
        _pasid = pasid;
        _iotlb = iotlb;
        _psc = psc;
        _deviceTlbRoundTripPs = SimTime.FromNs(options.DeviceTlbRoundTripNs);
    }

    /// <summary>Device-TLB invalidations sent to endpoints.</summary>
    public long DeviceTlbInvalidations { get; private set; }

    /// <summary>The ATS endpoint at <paramref name="rid"/> (device-TLB invalidations and page responses go to it).</summary>
    public void RegisterEndpoint(ushort rid, IAtsEndpoint endpoint) => _endpoints[rid] = endpoint;

    public long ExtraLatencyPs(in InvalidationDescriptor d)
        => d.Type is InvalidationType.DeviceTlb or InvalidationType.PasidDeviceTlb ? _deviceTlbRoundTripPs : 0;

    public void Apply(in InvalidationDescriptor d)
    {
        switch (d.Type)
        {
            case InvalidationType.ContextCache: _context.Invalidate(d); break;
            case InvalidationType.PasidCache: _pasid.Invalidate(d); break;
            case InvalidationType.Iotlb: ApplyIotlb(d); break;
            case InvalidationType.PasidIotlb: ApplyPasidIotlb(d); break;
            case InvalidationType.DeviceTlb:
            case InvalidationType.PasidDeviceTlb:
                DeviceTlbInvalidations++;
                if (_endpoints.TryGetValue(d.RequesterId, out var ep)) ep.InvalidateDeviceTlb(d);
                break;
            case InvalidationType.PageGroupResponse:
                if (_endpoints.TryGetValue(d.RequesterId, out var ep2)) ep2.OnPageResponse(d);
                break;
            case InvalidationType.Wait:
                break;
        }
    }

    /// <summary>IOTLB invalidate (§6.5.2.3): global, domain-selective or page-selective within a domain.</summary>
    private void ApplyIotlb(in InvalidationDescriptor d)
    {
        switch (d.Granularity)
        {
            case InvalidationGranularity.Global:
                _iotlb.InvalidateAll();
                _psc.InvalidateAll();
                break;
            case InvalidationGranularity.Domain:
                _iotlb.InvalidateDomain(d.DomainId);
                _psc.InvalidateDomain(d.DomainId);
                break;
            default:
            {
                var (first, last) = d.AddressRange();
                _iotlb.InvalidateRange(d.DomainId, null, first, last);
                if (!d.LeafOnly) _psc.InvalidateSecondStage(d.DomainId, first, last);
                break;
            }
        }
    }

    /// <summary>PASID-based IOTLB invalidate (§6.5.2.4): first-stage mappings of one PASID, all or a page range.</summary>
    private void ApplyPasidIotlb(in InvalidationDescriptor d)
    {
        if (d.Granularity == InvalidationGranularity.Page)
        {
            var (first, last) = d.AddressRange();
            _iotlb.InvalidateRange(d.DomainId, d.Pasid, first, last);
            if (!d.LeafOnly) _psc.InvalidateFirstStage(d.DomainId, d.Pasid, first, last);
        }
        else
        {
            _iotlb.InvalidatePasid(d.DomainId, d.Pasid);
            _psc.InvalidateFirstStage(d.DomainId, d.Pasid);
        }
    }

    public void Reset() => DeviceTlbInvalidations = 0;
}
