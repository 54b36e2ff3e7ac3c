using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Invalidation;

namespace IommuSim.Hardware.Smmu;

/// <summary>
/// A PCIe endpoint's ATC and PRI interface as the SMMU reaches it. The device model speaks the
/// PCIe messages (an ATS Invalidate Request, a PRG Response), which VT-d and SMMUv3 both send; this
/// turns CMD_ATC_INV and CMD_PRI_RESP into those messages so one device model serves both
/// architectures.
/// </summary>
public sealed class SmmuAtsEndpoint(IAtsEndpoint device) : ISmmuAtsEndpoint
{
    /// <summary>CMD_ATC_INV: Address/Size name 4 KiB × 2^Size bytes, naturally aligned (SMMUv3 §4.5.1); with
    /// SSV the request carries the PASID (a PASID-based ATS invalidation), without it every PASID's entries go.</summary>
    public int InvalidateAtc(bool substreamValid, uint ssid, ulong address, uint log2Pages)
    {
        int am = (int)Math.Min(log2Pages, 52u);
        var d = substreamValid
            ? new InvalidationDescriptor(InvalidationType.PasidDeviceTlb, InvalidationGranularity.Page, Pasid: ssid, Address: address, AddressMask: am)
            : log2Pages >= 52
                ? new InvalidationDescriptor(InvalidationType.DeviceTlb, InvalidationGranularity.Global)
                : new InvalidationDescriptor(InvalidationType.DeviceTlb, InvalidationGranularity.Page, Address: address, AddressMask: am);
        return device.InvalidateDeviceTlb(d);
    }

    /// <summary>CMD_PRI_RESP Resp: 0 Deny (PCIe "Invalid Request"), 1 Fail ("Response Failure"), 2 Success.</summary>
    public void OnPriResponse(bool substreamValid, uint ssid, ushort prgi, byte response)
    {
        var code = response switch { 2 => PageResponseCode.Success, 1 => PageResponseCode.Failure, _ => PageResponseCode.Invalid };
        device.OnPageResponse(new InvalidationDescriptor(InvalidationType.PageGroupResponse, InvalidationGranularity.Device,
            Pasid: substreamValid ? ssid : 0, ResponseCode: code, PageGroupIndex: prgi));
    }
}
