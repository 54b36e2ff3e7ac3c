namespace IommuSim.Uapi.Driver;

/// <summary>
/// The static identity domain (IOMMU_DOMAIN_IDENTITY, iommu=pt): PASID entries with PGTT
/// pass-through, tagged with FLPT_DEFAULT_DID as the Linux driver does.
/// </summary>
public sealed class VtdIdentityDomain() : IommuDomain(VtdDriver.FlptDefaultDid)
{
    public override IommuDomainType Type => IommuDomainType.Identity;
}
