using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Driver;

/// <summary>
/// struct dmar_domain: what the VT-d driver keeps per iommu_domain. Every domain has its own
/// domain id (DID), the tag the IOTLB and PASID cache use; the driver remembers which
/// (device, PASID) pairs point at it, because those are the entries it must rewrite or flush.
/// </summary>
public abstract class VtdDomain
{
    private readonly List<(DeviceSpec Device, uint Pasid)> _attachments = [];

    protected VtdDomain(ushort domainId) => DomainId = domainId;

    public ushort DomainId { get; }

    public IReadOnlyList<(DeviceSpec Device, uint Pasid)> Attachments => _attachments;

    /// <summary>Whether the domain has been freed (its DID may be reused).</summary>
    public bool Freed { get; internal set; }

    internal void AddAttachment(DeviceSpec dev, uint pasid) => _attachments.Add((dev, pasid));

    internal void RemoveAttachment(DeviceSpec dev, uint pasid) => _attachments.Remove((dev, pasid));
}
