using IommuSim.Hardware.Iommu.Invalidation;

namespace IommuSim.Hardware.Iommu;

/// <summary>A device the IOMMU talks back to: its device TLB (ATC) and its page-request interface.</summary>
public interface IAtsEndpoint
{
    /// <summary>Removes ATC entries named by a (PASID-based) device-TLB invalidation; returns how many.</summary>
    int InvalidateDeviceTlb(in InvalidationDescriptor d);

    /// <summary>A page group response for a page request the device sent.</summary>
    void OnPageResponse(in InvalidationDescriptor d);
}

/// <summary>Where translated requests go next (the root complex).</summary>
public interface ITranslationSink
{
    void OnTranslated(Pcie.Tlp tlp);
    /// <summary>The IOMMU input queue has room again after refusing a request.</summary>
    void OnInputQueueSpace();
}
