namespace IommuSim.Uapi.Iopt;

/// <summary>
/// struct iopt_reserved: an IOVA range no mapping may touch, owned by whoever reserved it (a domain
/// for its aperture, a device for its MSI window) so that detach removes exactly its ranges.
/// Reserved ranges may overlap each other (two devices report the same MSI window).
/// </summary>
public sealed record IoptReserved(ulong Start, ulong Last, object Owner);
