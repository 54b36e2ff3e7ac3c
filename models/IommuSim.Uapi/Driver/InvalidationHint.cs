namespace IommuSim.Uapi.Driver;

/// <summary>
/// The IH (invalidation hint) bit of the IOTLB invalidations an unmap sends (VT-d §6.5.2.3): with IH = 1 the
/// IOMMU keeps its paging-structure caches. Config <c>translation.dmaApi.invalidationHint</c>.
/// </summary>
public enum InvalidationHint
{
    /// <summary>IH = 0 on every unmap: the paging-structure caches for the range are flushed too.</summary>
    Never,
    /// <summary>As Linux: IH = 1 exactly when the unmap freed no page-table page (intel_iommu_tlb_sync: ih = list_empty(&amp;gather->freelist)).</summary>
    Kernel,
    /// <summary>IH = 1 always: the leaf-only mode of Rubin et al. (SOSP'24), <c>translation.dmaApi.leafOnlyInvalidation</c>.</summary>
    Always,
}
