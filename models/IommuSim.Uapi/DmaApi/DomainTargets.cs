using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vfio;
using IommuSim.Uapi.Vm;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The host DMA API in its own domain: iommu_map / iommu_unmap on the <see cref="VtdPagingDomain"/>, whose
/// flush (cache_tag_flush_range, built by the driver) is gathered for the caller to submit and wait for.
/// 4 KiB leaves: the buffers are mapped one page at a time, as dma_map_single of a sub-page buffer is.
/// </summary>
internal sealed class KernelDomainTarget(VtdPagingDomain domain, MappingWindow window, InvalidationHint hint) : WindowedTarget(window)
{
    public VtdPagingDomain Domain => domain;
    public override ushort DomainId => domain.DomainId;
    public override IotlbGather CreateGather() => new VtdIotlbGather(domain.Driver.Port);

    public override void Map(ulong iova, ulong output, ulong bytes, Access access, IotlbGather flush)
    {
        using (domain.Driver.DeferFlushes(Vtd(flush), NoFreed)) domain.Map(iova, output, bytes, access, allowLargePages: false);
    }

    public override void Unmap(ulong iova, ulong bytes, IotlbGather? flush, List<ulong> freedTablePages)
    {
        // IH (leaf only) keeps the paging-structure caches; Linux sets it when the unmap freed no page-table page.
        ulong removed;
        using (domain.Driver.DeferFlushes(Gather(flush), freedTablePages)) removed = domain.Unmap(iova, bytes, hint);
        // An untraced range frees no table here: IH as the hint says for that case.
        if (removed == 0 && flush is not null) UntracedUnmapFlush(domain, iova, bytes, hint != InvalidationHint.Never, Vtd(flush));
    }

    public override void AddDomainInvalidation(IotlbGather into) => VtdInvalidation.AddAll(Vtd(into), domain, firstStage: false);

    public override void PutTablePages(List<ulong> pages) => domain.Driver.PutTablePages(pages);
}

/// <summary>
/// A VFIO program that maps each buffer: IOMMU_IOAS_MAP / IOAS_UNMAP on its IOAS (cdev), or VFIO_IOMMU_MAP_DMA /
/// UNMAP_DMA on its container (the compat IOAS). The ioctls pin the program's pages, create and remove IOAS areas
/// and fill every domain attached to the IOAS; the unmap's flush is gathered for the caller.
/// </summary>
internal sealed class IoasTarget(IommufdContext ictx, uint ioasId, DomainFlusher domain, bool vfioContainer, ulong poolVa, MappingWindow window)
    : WindowedTarget(window)
{
    private readonly Iopt.IoPagetable _iopt = ((Ioas)ictx.Lookup(ioasId)!).Iopt;

    // One instance of each argument struct, refilled per call (the program's stack in the real thing).
    private readonly IommuIoasMap _map = new();
    private readonly IommuIoasUnmap _unmap = new();
    private readonly VfioIommuType1DmaMap _vfioMap = new();
    private readonly VfioIommuType1DmaUnmap _vfioUnmap = new();

    public override ushort DomainId => domain.DomainId;
    public override IotlbGather CreateGather() => domain.CreateGather();

    public override void Map(ulong iova, ulong output, ulong bytes, Access access, IotlbGather flush)
    {
        ulong va = poolVa + (output - BufferBase);
        Errno rc;
        domain.Begin(flush, NoFreed);
        try
        {
            if (vfioContainer)
            {
                _vfioMap.argsz = VfioIommuType1DmaMap.MinSize;
                _vfioMap.flags = ((access & Access.Read) != 0 ? VfioConst.VFIO_DMA_MAP_FLAG_READ : 0)
                    | ((access & Access.Write) != 0 ? VfioConst.VFIO_DMA_MAP_FLAG_WRITE : 0);
                _vfioMap.vaddr = va; _vfioMap.iova = iova; _vfioMap.size = bytes;
                rc = ictx.VfioMapDma(_vfioMap);
            }
            else
            {
                _map.ioas_id = ioasId; _map.user_va = va; _map.length = bytes; _map.iova = iova; _map.__reserved = 0;
                _map.flags = IommuIoasMapFlags.FIXED_IOVA
                    | ((access & Access.Read) != 0 ? IommuIoasMapFlags.READABLE : 0)
                    | ((access & Access.Write) != 0 ? IommuIoasMapFlags.WRITEABLE : 0);
                rc = ictx.IoasMap(_map);
            }
        }
        finally { domain.End(); }
        if (rc == Errno.EEXIST || rc == Errno.EADDRINUSE) throw new InvalidOperationException($"IOVA 0x{iova:x} is already mapped ({rc})");
        Check(rc, vfioContainer ? "VFIO_IOMMU_MAP_DMA" : "IOMMU_IOAS_MAP", iova, bytes);
    }

    public override void Unmap(ulong iova, ulong bytes, IotlbGather? flush, List<ulong> freedTablePages)
    {
        Errno rc;
        CutAtEnds(_iopt, iova, bytes);
        domain.Begin(flush, freedTablePages);
        try
        {
            if (vfioContainer)
            {
                _vfioUnmap.argsz = VfioIommuType1DmaUnmap.MinSize; _vfioUnmap.flags = 0; _vfioUnmap.iova = iova; _vfioUnmap.size = bytes;
                rc = ictx.VfioUnmapDma(_vfioUnmap);
            }
            else
            {
                _unmap.ioas_id = ioasId; _unmap.iova = iova; _unmap.length = bytes;
                rc = ictx.IoasUnmap(_unmap);
            }
        }
        finally { domain.End(); }
        // Nothing there (IOAS_UNMAP: ENOENT; type1 UNMAP_DMA: success with size 0): a traced range mapped before tracing.
        bool nothing = vfioContainer ? rc == Errno.OK && _vfioUnmap.size == 0 : rc == Errno.ENOENT && _iopt.FirstArea(iova, iova + bytes - 1) is null;
        if (nothing)
        {
            if (flush is not null) domain.AddRange(flush, iova, bytes, leafOnly: false);
            return;
        }
        Check(rc, vfioContainer ? "VFIO_IOMMU_UNMAP_DMA" : "IOMMU_IOAS_UNMAP", iova, bytes);
    }

    /// <summary>
    /// A lazy flush of the IOAS's domain. Real iommufd has no deferred flush (IOAS_UNMAP always syncs); the
    /// model keeps the DMA-API mode for VFIO programs as an assumption, flushing the domain as the host's
    /// flush queue would (VT-d cache_tag_flush_all, arm-smmu-v3 arm_smmu_tlb_inv_context).
    /// </summary>
    public override void AddDomainInvalidation(IotlbGather into) => domain.AddAll(into);

    public override void PutTablePages(List<ulong> pages) => domain.PutTablePages(pages);
}

/// <summary>
/// Nested: the guest's driver edits its own stage-1 table (guest-physical buffers); its invalidation is trapped
/// by the VMM and forwarded with IOMMU_HWPT_INVALIDATE (IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) on the nested HWPT,
/// whose flush the driver builds (PASID-based IOTLB, device TLBs) and the caller submits and waits for.
/// </summary>
internal sealed class GuestStage1Target(IommufdContext ictx, uint nestedHwptId, ushort did, PageTable stage1, MappingWindow window)
    : WindowedTarget(window)
{
    private readonly IommuHwptVtdS1Invalidate[] _entry = new IommuHwptVtdS1Invalidate[1];
    private readonly IommuHwptInvalidate _cmd = new();

    public override ushort DomainId => did;
    public override IotlbGather CreateGather() => new VtdIotlbGather(ictx.Kernel.Port);

    public override void Map(ulong iova, ulong output, ulong bytes, Access access, IotlbGather flush)
        => stage1.Map(iova, output, bytes, access, PageSize.Size4K); // no caching mode: a new first-stage entry needs no invalidation

    public override void Unmap(ulong iova, ulong bytes, IotlbGather? flush, List<ulong> freedTablePages)
    {
        stage1.Unmap(iova, bytes);
        if (flush is not null) Invalidate(iova & ~0xFFFUL, (bytes + 0xFFF) >> 12, Vtd(flush)); // a lazy guest invalidates later, domain-wide
    }

    public override void AddDomainInvalidation(IotlbGather into) => Invalidate(0, ulong.MaxValue, Vtd(into));

    /// <summary>The guest's table pages are the guest's to free; no host table is edited here.</summary>
    public override void PutTablePages(List<ulong> pages) => pages.Clear();

    private void Invalidate(ulong addr, ulong npages, List<InvalidationDescriptor> into)
    {
        _entry[0] = new IommuHwptVtdS1Invalidate { addr = addr, npages = npages };
        _cmd.hwpt_id = nestedHwptId;
        _cmd.data_type = IommuHwptInvalidateDataType.VTD_S1;
        _cmd.entry_len = IommufdContext.VtdS1InvalidateEntryLen;
        _cmd.entry_num = 1;
        _cmd.data = _entry;
        Errno rc;
        using (ictx.Kernel.Vtd!.DeferFlushes(into, NoFreed)) rc = ictx.HwptInvalidate(_cmd);
        Check(rc, "IOMMU_HWPT_INVALIDATE", addr, npages);
    }
}

/// <summary>
/// Shadow: the guest's driver edits its stage-1 table; a shadowing vIOMMU runs in caching mode, so each change
/// traps and the VMM mirrors it into its shadow IOAS with IOAS_MAP (the guest RAM behind the GPA) or IOAS_UNMAP.
/// The unmap's flush of the shadow domain is the host driver's, gathered for the caller through the neutral gather
/// (VT-d: cache_tag_flush_range descriptors + wait descriptor; arm-smmu-v3: arm_smmu_tlb_inv_range_domain's TLBIs +
/// CMD_SYNC). Buffers are handed out by host-physical address (the window) and mapped by the guest at the matching GPA.
/// </summary>
internal sealed class ShadowTarget(IommufdContext ictx, uint shadowIoasId, DomainFlusher shadow, VirtualMachine vm, PageTable stage1,
    ulong poolGpa, MappingWindow window) : WindowedTarget(window)
{
    private readonly Iopt.IoPagetable _iopt = ((Ioas)ictx.Lookup(shadowIoasId)!).Iopt;

    private readonly IommuIoasMap _map = new();
    private readonly IommuIoasUnmap _unmap = new();

    public override ushort DomainId => shadow.DomainId;
    public override IotlbGather CreateGather() => shadow.CreateGather();

    public override void Map(ulong iova, ulong output, ulong bytes, Access access, IotlbGather flush)
    {
        ulong gpa = poolGpa + (output - BufferBase);
        stage1.Map(iova, gpa, bytes, access, PageSize.Size4K);
        _map.ioas_id = shadowIoasId; _map.user_va = vm.RamUserVa + gpa; _map.length = bytes; _map.iova = iova; _map.__reserved = 0;
        _map.flags = IommuIoasMapFlags.FIXED_IOVA
            | ((access & Access.Read) != 0 ? IommuIoasMapFlags.READABLE : 0)
            | ((access & Access.Write) != 0 ? IommuIoasMapFlags.WRITEABLE : 0);
        Errno rc;
        shadow.Begin(flush, NoFreed);
        try { rc = ictx.IoasMap(_map); }
        finally { shadow.End(); }
        Check(rc, "IOMMU_IOAS_MAP (shadow)", iova, bytes);
    }

    public override void Unmap(ulong iova, ulong bytes, IotlbGather? flush, List<ulong> freedTablePages)
    {
        stage1.Unmap(iova, bytes);
        _unmap.ioas_id = shadowIoasId; _unmap.iova = iova; _unmap.length = bytes;
        Errno rc;
        CutAtEnds(_iopt, iova, bytes);
        shadow.Begin(flush, freedTablePages);
        try { rc = ictx.IoasUnmap(_unmap); }
        finally { shadow.End(); }
        if (rc == Errno.ENOENT && _iopt.FirstArea(iova, iova + bytes - 1) is null)
        {
            if (flush is not null) shadow.AddRange(flush, iova, bytes, leafOnly: false);
            return;
        }
        Check(rc, "IOMMU_IOAS_UNMAP (shadow)", iova, bytes);
    }

    public override void AddDomainInvalidation(IotlbGather into) => shadow.AddAll(into);

    public override void PutTablePages(List<ulong> pages) => shadow.PutTablePages(pages);
}
