using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;

namespace IommuSim.Uapi.Driver;

/// <summary>
/// The one place invalidation descriptors and page responses are built, for the ioctl paths
/// (<see cref="VtdDriver"/>) and the run-time DMA-API path alike, following drivers/iommu/intel/cache.c:
/// <list type="bullet">
/// <item>IOTLB (cache_tag_flush_iotlb): a first-stage (PASID-tagged) domain gets a PASID-based IOTLB
/// invalidation (qi_flush_piotlb, page-selective; "all of the PASID" only for a whole-domain flush);
/// a second-stage domain a page-selective IOTLB invalidation, or a domain-selective one when the
/// address mask exceeds cap_max_amask_val.</item>
/// <item>Device TLB (cache_tag_flush_devtlb_psi): a tag without PASID (IOMMU_NO_PASID = 0) gets
/// qi_flush_dev_iotlb, any other PASID qi_flush_dev_iotlb_pasid. A whole-domain flush
/// (cache_tag_flush_all) always uses qi_flush_dev_iotlb over the whole address space.</item>
/// <item>Page group response (intel_page_response): QI_PGRP_RESP with requester id, PASID, group index and code.</item>
/// </list>
/// </summary>
public static class VtdInvalidation
{
    /// <summary>
    /// cap_max_amask_val: above this address mask a second-stage page-selective flush becomes
    /// domain-selective. Assumption: 18 (1 GiB of 4 KiB pages; real parts report 18 or more).
    /// </summary>
    public const int MaxAddressMask = 18;

    /// <summary>An address mask this large covers every 4 KiB page of a 64-bit space (2^52 pages).</summary>
    public const int WholeSpaceMask = 52;

    /// <summary>IOTLB part of cache_tag_flush_range for one (DID, PASID) tag.</summary>
    public static void AddIotlbRange(List<InvalidationDescriptor> into, ushort did, uint pasid, bool firstStage, ulong addr, int am, bool leafOnly)
    {
        // A mask of the whole 64-bit space (a range calculate_psi_aligned_address cannot align: MAX_AGAW_PFN_WIDTH)
        // is all of the PASID; the descriptor's range arithmetic stops at 2^64.
        if (firstStage && am >= WholeSpaceMask) into.Add(InvalidationDescriptor.PasidIotlbAll(did, pasid));
        else if (firstStage) into.Add(InvalidationDescriptor.PasidIotlbPages(did, pasid, addr, am, leafOnly));
        else into.Add(am > MaxAddressMask ? InvalidationDescriptor.IotlbDomain(did) : InvalidationDescriptor.IotlbPages(did, addr, am, leafOnly));
    }

    /// <summary>IOTLB part of cache_tag_flush_all for one tag: all of the PASID (first stage) or the domain.</summary>
    public static void AddIotlbAll(List<InvalidationDescriptor> into, ushort did, uint pasid, bool firstStage)
        => into.Add(firstStage ? InvalidationDescriptor.PasidIotlbAll(did, pasid) : InvalidationDescriptor.IotlbDomain(did));

    /// <summary>Device-TLB part of cache_tag_flush_range for one device tag.</summary>
    public static void AddDeviceTlbRange(List<InvalidationDescriptor> into, ushort requesterId, uint pasid, ulong addr, int am)
        => into.Add(am >= WholeSpaceMask ? InvalidationDescriptor.DeviceTlbAll(requesterId)
            : pasid == 0
            ? InvalidationDescriptor.DeviceTlb(requesterId, addr, am)
            : new InvalidationDescriptor(InvalidationType.PasidDeviceTlb, InvalidationGranularity.Page, Pasid: pasid,
                RequesterId: requesterId, Address: addr, AddressMask: am));

    /// <summary>Device-TLB part of cache_tag_flush_all: the whole device TLB, whatever the PASID.</summary>
    public static void AddDeviceTlbAll(List<InvalidationDescriptor> into, ushort requesterId)
        => into.Add(InvalidationDescriptor.DeviceTlbAll(requesterId));

    /// <summary>
    /// cache_tag_flush_range over a domain's own tags: one IOTLB invalidation per attachment for a first-stage
    /// domain (its entries are tagged by PASID), one for the DID of a second-stage domain, and a device-TLB
    /// invalidation per ATS-enabled attachment. <paramref name="leafOnly"/> is the IH hint (the unmap freed no
    /// page-table page). A domain with no attachment still has its DID flushed.
    /// </summary>
    public static void AddRange(List<InvalidationDescriptor> into, VtdDomain domain, bool firstStage, ulong iova, ulong bytes, bool leafOnly)
    {
        var (addr, am) = InvalidationDescriptor.CoveringMask(iova, bytes);
        var att = domain.Attachments;
        if (!firstStage || att.Count == 0)
        {
            if (firstStage) into.Add(InvalidationDescriptor.IotlbDomain(domain.DomainId));
            else AddIotlbRange(into, domain.DomainId, 0, false, addr, am, leafOnly);
        }
        for (int i = 0; i < att.Count; i++)
        {
            var (dev, pasid) = att[i];
            if (firstStage) AddIotlbRange(into, domain.DomainId, pasid, true, addr, am, leafOnly);
            if (dev.Ats) AddDeviceTlbRange(into, dev.Rid.Value, pasid, addr, am);
        }
    }

    /// <summary>cache_tag_flush_all over a domain's own tags (a lazy flush-queue flush, iommu_flush_iotlb_all).</summary>
    public static void AddAll(List<InvalidationDescriptor> into, VtdDomain domain, bool firstStage)
    {
        var att = domain.Attachments;
        if (!firstStage || att.Count == 0) into.Add(InvalidationDescriptor.IotlbDomain(domain.DomainId));
        for (int i = 0; i < att.Count; i++)
        {
            var (dev, pasid) = att[i];
            if (firstStage) AddIotlbAll(into, domain.DomainId, pasid, true);
            if (dev.Ats) AddDeviceTlbAll(into, dev.Rid.Value);
        }
    }

    /// <summary>Domain-selective IOTLB invalidation (qi_flush_iotlb with DMA_TLB_DSI_FLUSH): freeing a domain, dirty-bit changes.</summary>
    public static InvalidationDescriptor IotlbDomain(ushort did) => InvalidationDescriptor.IotlbDomain(did);

    /// <summary>Device-selective context-cache invalidation after a context entry is written (qi_flush_context, DMA_CCMD_DEVICE_INVL).</summary>
    public static InvalidationDescriptor ContextEntry(ushort requesterId) => InvalidationDescriptor.ContextDevice(0, requesterId);

    /// <summary>PASID-selective PASID-cache invalidation after a PASID entry changes (pasid_cache_invalidation_with_pasid).</summary>
    public static InvalidationDescriptor PasidEntry(ushort did, uint pasid) => InvalidationDescriptor.PasidCacheEntry(did, pasid);

    /// <summary>
    /// The page group response descriptor (VT-d 6.5.2.9; intel_page_response builds QI_PGRP_RESP with the
    /// requester id, PASID, response code and page-request group index). Granularity Device: the hardware reads
    /// only those fields, and the stale-translation tracker and trace skip it.
    /// </summary>
    public static InvalidationDescriptor PageGroupResponse(ushort requesterId, uint pasid, int groupIndex, PageResponseCode code)
        => new(InvalidationType.PageGroupResponse, InvalidationGranularity.Device,
            Pasid: pasid, RequesterId: requesterId, ResponseCode: code, PageGroupIndex: groupIndex);
}
