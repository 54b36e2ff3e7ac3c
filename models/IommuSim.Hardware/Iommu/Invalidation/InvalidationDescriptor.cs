namespace IommuSim.Hardware.Iommu.Invalidation;

/// <summary>Queued-invalidation descriptor types (VT-d 6.5.2).</summary>
public enum InvalidationType : byte
{
    ContextCache,
    PasidCache,
    Iotlb,
    PasidIotlb,
    DeviceTlb,
    PasidDeviceTlb,
    Wait,
    PageGroupResponse,
}

/// <summary>What a descriptor covers.</summary>
public enum InvalidationGranularity : byte
{
    Global,
    /// <summary>Everything tagged with <see cref="InvalidationDescriptor.DomainId"/>.</summary>
    Domain,
    /// <summary>Context cache: one requester id. PASID cache / PASID-IOTLB: one (DID, PASID).</summary>
    Device,
    /// <summary>IOTLB / PASID-IOTLB / device TLB: 2^AddressMask pages from Address (in the domain/PASID).</summary>
    Page,
}

/// <summary>Response code of a page group response.</summary>
public enum PageResponseCode : byte
{
    Success = 0,
    Invalid = 1,
    Failure = 0xF,
}

/// <summary>
/// One queued-invalidation descriptor. Fields not used by a type are ignored. <see cref="LeafOnly"/>
/// is the invalidation hint (IH): paging-structure caches are kept.
/// </summary>
public readonly record struct InvalidationDescriptor(
    InvalidationType Type,
    InvalidationGranularity Granularity = InvalidationGranularity.Global,
    ushort DomainId = 0,
    uint Pasid = 0,
    ushort RequesterId = 0,
    ulong Address = 0,
    int AddressMask = 0,
    bool LeafOnly = false,
    PageResponseCode ResponseCode = PageResponseCode.Success,
    int PageGroupIndex = 0,
    long Tag = 0)
{
    public static InvalidationDescriptor ContextGlobal() => new(InvalidationType.ContextCache);
    public static InvalidationDescriptor ContextDomain(ushort did) => new(InvalidationType.ContextCache, InvalidationGranularity.Domain, did);
    public static InvalidationDescriptor ContextDevice(ushort did, ushort rid) => new(InvalidationType.ContextCache, InvalidationGranularity.Device, did, RequesterId: rid);
    public static InvalidationDescriptor PasidCacheDomain(ushort did) => new(InvalidationType.PasidCache, InvalidationGranularity.Domain, did);
    public static InvalidationDescriptor PasidCacheEntry(ushort did, uint pasid) => new(InvalidationType.PasidCache, InvalidationGranularity.Device, did, pasid);
    public static InvalidationDescriptor IotlbGlobal() => new(InvalidationType.Iotlb);
    public static InvalidationDescriptor IotlbDomain(ushort did) => new(InvalidationType.Iotlb, InvalidationGranularity.Domain, did);
    public static InvalidationDescriptor IotlbPages(ushort did, ulong addr, int am, bool leafOnly = false)
        => new(InvalidationType.Iotlb, InvalidationGranularity.Page, did, Address: addr, AddressMask: am, LeafOnly: leafOnly);
    public static InvalidationDescriptor PasidIotlbAll(ushort did, uint pasid) => new(InvalidationType.PasidIotlb, InvalidationGranularity.Device, did, pasid);
    public static InvalidationDescriptor PasidIotlbPages(ushort did, uint pasid, ulong addr, int am, bool leafOnly = false)
        => new(InvalidationType.PasidIotlb, InvalidationGranularity.Page, did, pasid, Address: addr, AddressMask: am, LeafOnly: leafOnly);
    public static InvalidationDescriptor DeviceTlb(ushort rid, ulong addr, int am) => new(InvalidationType.DeviceTlb, InvalidationGranularity.Page, RequesterId: rid, Address: addr, AddressMask: am);
    public static InvalidationDescriptor DeviceTlbAll(ushort rid) => new(InvalidationType.DeviceTlb, InvalidationGranularity.Global, RequesterId: rid);
    public static InvalidationDescriptor Wait(long tag = 0) => new(InvalidationType.Wait, Tag: tag);

    /// <summary>First and last byte of the naturally aligned 2^<see cref="AddressMask"/>-page range a page-selective descriptor names.</summary>
    public (ulong First, ulong Last) AddressRange()
    {
        ulong size = 1UL << (12 + AddressMask);
        ulong first = Address & ~(size - 1);
        return (first, first + size - 1);
    }

    /// <summary>Smallest address mask (2^am pages, naturally aligned) covering [addr, addr+bytes).</summary>
    public static (ulong Address, int Mask) CoveringMask(ulong addr, ulong bytes)
    {
        ulong first = addr >> 12, last = (addr + bytes - 1) >> 12;
        int am = 0;
        while ((first >> am) != (last >> am)) am++;
        return ((first >> am) << am << 12, am);
    }
}
