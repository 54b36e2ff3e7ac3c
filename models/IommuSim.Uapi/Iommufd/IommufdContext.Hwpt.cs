using IommuSim.Uapi.Driver;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// HWPT, hardware-info, fault, vIOMMU and vDEVICE ioctls (hw_pagetable.c, device.c, eventq.c,
/// viommu.c) with the VT-d driver's checks.
/// </summary>
public sealed partial class IommufdContext
{
    private const uint HwptFlagsValid = IommuHwptAllocFlags.NEST_PARENT | IommuHwptAllocFlags.DIRTY_TRACKING
                                        | IommuHwptAllocFlags.FAULT_ID_VALID | IommuHwptAllocFlags.PASID;

    /// <summary>sizeof(struct iommu_hwpt_vtd_s1_invalidate).</summary>
    public const uint VtdS1InvalidateEntryLen = 24;

    /// <summary>sizeof(struct iommu_hw_info_vtd).</summary>
    public const uint HwInfoVtdLen = 24;

    /// <summary>
    /// IOMMU_HWPT_ALLOC (iommufd_hwpt_alloc): a paging HWPT on an IOAS (iommufd_hwpt_paging_alloc) or a nested one on a
    /// nest parent or vIOMMU (iommufd_hwpt_nested_alloc). The fault queue is looked up only once the HWPT exists, and a
    /// bad fault_id destroys it again. The PASID flag is not checked against the device: the VT-d driver accepts it.
    /// </summary>
    public Errno HwptAlloc(IommuHwptAlloc cmd)
    {
        if (cmd.__reserved != 0) return Errno.EOPNOTSUPP;
        bool hasData = cmd.data is not null || cmd.data_arm_smmuv3 is not null; // data_len != 0
        if (cmd.data_type == IommuHwptDataType.NONE && hasData) return Errno.EINVAL;
        if (cmd.data_type != IommuHwptDataType.NONE && !hasData) return Errno.EINVAL;
        Errno rc = Get(cmd.dev_id, out IommufdDevice idev);
        if (rc != Errno.OK) return rc;
        var ptObj = Lookup(cmd.pt_id);
        if (ptObj is not (Ioas or HwptPaging or Viommu)) return Errno.EINVAL;
        bool pasidCompat = (cmd.flags & IommuHwptAllocFlags.PASID) != 0;
        bool wantsFault = (cmd.flags & IommuHwptAllocFlags.FAULT_ID_VALID) != 0;

        HwptBase hwpt;
        if (ptObj is Ioas ioas)
        {
            // iommufd_hwpt_paging_alloc, in its order (iommufd_hwpt_alloc checks __reserved only, not __reserved2).
            if ((cmd.flags & ~HwptFlagsValid) != 0) return Errno.EOPNOTSUPP;
            if (cmd.data_type != IommuHwptDataType.NONE) return Errno.EOPNOTSUPP;
            bool nestParent = (cmd.flags & IommuHwptAllocFlags.NEST_PARENT) != 0;
            bool dirty = (cmd.flags & IommuHwptAllocFlags.DIRTY_TRACKING) != 0;
            if (dirty && !Kernel.Spec.DirtyTracking) return Errno.EOPNOTSUPP;
            // A nest parent never faults to user space: its faults belong to the nested child.
            if (wantsFault && nestParent) return Errno.EOPNOTSUPP;
            if (nestParent && !Kernel.Spec.Nesting) return Errno.EOPNOTSUPP;
            var domain = Kernel.Driver.AllocPagingDomain(nestParent, dirty);
            rc = ioas.Iopt.AddDomain(domain);
            if (rc != Errno.OK)
            {
                Kernel.Driver.FreeDomain(domain);
                return rc;
            }
            var paging = new HwptPaging(this, ioas, domain, autoDomain: false, fault: null, pasidCompat) { InIoas = true };
            ioas.Get();
            ioas.AddHwpt(paging);
            hwpt = paging;
        }
        else if (ptObj is Viommu viommu)
        {
            // iommufd_viommu_alloc_hwpt_nested: the driver's alloc_domain_nested makes the domain from its data.
            if ((cmd.flags & ~IommuHwptAllocFlags.FAULT_ID_VALID) != 0) return Errno.EOPNOTSUPP;
            if (!hasData) return Errno.EOPNOTSUPP;
            if (viommu.Ops is not { } ops) return Errno.EOPNOTSUPP;
            rc = ops.AllocDomainNested(viommu, cmd.flags & ~IommuHwptAllocFlags.FAULT_ID_VALID, cmd, out var domain);
            if (rc != Errno.OK) return rc;
            hwpt = new HwptNested(this, viommu, (IommuNestedDomain)domain!, fault: null, pasidCompat);
            viommu.Get();
        }
        else
        {
            // Nested on a paging parent directly (iommufd_hwpt_nested_alloc).
            var parent = (HwptPaging)ptObj;
            if ((cmd.flags & ~(IommuHwptAllocFlags.FAULT_ID_VALID | IommuHwptAllocFlags.PASID)) != 0) return Errno.EOPNOTSUPP;
            if (parent.AutoDomain || !parent.NestParent) return Errno.EINVAL;
            if (cmd.data_type != IommuHwptDataType.VTD_S1 || cmd.data is null) return Errno.EOPNOTSUPP;
            var s1 = cmd.data;
            if ((s1.flags & ~(ulong)(VtdS1Flags.SRE | VtdS1Flags.EAFE | VtdS1Flags.WPE)) != 0 || s1.__reserved != 0) return Errno.EOPNOTSUPP;
            // iommufd_hwpt_nested_alloc: a driver without domain_alloc_nested (arm-smmu-v3 nests only through a vIOMMU) → EOPNOTSUPP.
            if (Kernel.Vtd is not { } vtd) return Errno.EOPNOTSUPP;
            var domain = vtd.AllocNestedDomain((VtdPagingDomain)parent.PagingDomain, (VtdS1Flags)s1.flags, s1.pgtbl_addr, s1.addr_width);
            hwpt = new HwptNested(this, parent, null, domain, fault: null, pasidCompat);
            parent.Get();
        }
        if (wantsFault)
        {
            rc = Get(cmd.fault_id, out FaultQueue f);
            if (rc != Errno.OK)
            {
                hwpt.Release(); // iommufd_object_abort_and_destroy: the HWPT never got an id
                return rc;
            }
            hwpt.Fault = f;
            f.Get();
        }
        cmd.out_hwpt_id = Finalize(hwpt).Id;
        return Errno.OK;
    }

    /// <summary>
    /// IOMMU_HWPT_INVALIDATE (iommufd_hwpt_invalidate): __reserved EOPNOTSUPP; entries without data or entry_len
    /// EINVAL; then a nested HWPT (its domain's cache_invalidate_user) or a vIOMMU (its ops->cache_invalidate; none:
    /// EOPNOTSUPP); any other object EINVAL. entry_num returns how many entries were handled, on failure too.
    /// </summary>
    public Errno HwptInvalidate(IommuHwptInvalidate cmd)
    {
        uint requested = cmd.entry_num;
        cmd.entry_num = 0;
        if (cmd.__reserved != 0) return Errno.EOPNOTSUPP;
        bool hasData = cmd.data is not null || cmd.data_arm_smmuv3 is not null; // data_uptr != 0
        if (requested > 0 && (!hasData || cmd.entry_len == 0)) return Errno.EINVAL;
        switch (Lookup(cmd.hwpt_id))
        {
            case null:
                return Errno.ENOENT;
            case HwptNested { NestedDomain: not VtdNestedDomain }:
                // A nested HWPT made by a vIOMMU driver: its domain has no cache_invalidate_user (SMMUv3 invalidates
                // through the vIOMMU).
                return Errno.EOPNOTSUPP;
            case HwptNested nested:
                {
                    // intel_nested_cache_invalidate_user → iommu_copy_struct_from_user_array.
                    if (cmd.data_type != IommuHwptInvalidateDataType.VTD_S1) return Errno.EINVAL;
                    if (requested > 0 && cmd.entry_len < VtdS1InvalidateEntryLen) return Errno.EINVAL;
                    if (requested > (cmd.data?.Length ?? 0)) return Errno.EFAULT;
                    for (uint i = 0; i < requested; i++)
                    {
                        var e = cmd.data![i];
                        if ((e.flags & ~IommuVtdInvFlags.LEAF) != 0 || e.__reserved != 0) return Errno.EOPNOTSUPP;
                        if ((e.addr & 0xFFF) != 0 || (e.npages == ulong.MaxValue && e.addr != 0)) return Errno.EINVAL;
                        Kernel.Vtd!.FlushNestedUser((VtdNestedDomain)nested.NestedDomain, e.addr, e.npages, (e.flags & IommuVtdInvFlags.LEAF) != 0);
                        cmd.entry_num = i + 1;
                    }
                    return Errno.OK;
                }
            case Viommu viommu:
                {
                    if (viommu.Ops is not { } ops) return Errno.EOPNOTSUPP;
                    uint done = requested;
                    Errno rc = ops.CacheInvalidate(viommu, cmd, ref done);
                    cmd.entry_num = done;
                    return rc;
                }
            default:
                return Errno.EINVAL;
        }
    }

    /// <summary>IOMMU_HWPT_SET_DIRTY_TRACKING: enabling starts from clean D bits.</summary>
    public Errno HwptSetDirtyTracking(IommuHwptSetDirtyTracking cmd)
    {
        if ((cmd.flags & ~IommuHwptSetDirtyTrackingFlags.ENABLE) != 0) return Errno.EOPNOTSUPP;
        Errno rc = Get(cmd.hwpt_id, out HwptPaging hwpt);
        if (rc != Errno.OK) return rc;
        if (!hwpt.PagingDomain.DirtyCapable) return Errno.EOPNOTSUPP;
        bool enable = (cmd.flags & IommuHwptSetDirtyTrackingFlags.ENABLE) != 0;
        if (enable && !hwpt.PagingDomain.DirtyTracking)
            foreach (var a in hwpt.Ioas.Iopt.Areas)
                if (a.InDomains) hwpt.PagingDomain.ClearDirty(a.Iova, a.Length);
        Kernel.Driver.SetDirtyTracking(hwpt.PagingDomain, enable);
        return Errno.OK;
    }

    /// <summary>
    /// IOMMU_HWPT_GET_DIRTY_BITMAP (iommufd_check_iova_range, iopt_read_and_clear_dirty_data): bit n is
    /// iova + n·page_size; read-and-clear unless NO_CLEAR. Like the kernel, only the areas inside the range are walked
    /// (each through the driver's read_and_clear_dirty), so the cost follows what is mapped, not the range's length.
    /// </summary>
    public Errno HwptGetDirtyBitmap(IommuHwptGetDirtyBitmap cmd)
    {
        if ((cmd.flags & ~IommuHwptGetDirtyBitmapFlags.NO_CLEAR) != 0) return Errno.EOPNOTSUPP;
        Errno rc = Get(cmd.hwpt_id, out HwptPaging hwpt);
        if (rc != Errno.OK) return rc;
        if (cmd.length == 0) return Errno.EINVAL;
        ulong last = cmd.iova + (cmd.length - 1);
        if (last < cmd.iova) return Errno.EOVERFLOW;
        ulong align = hwpt.Ioas.Iopt.IovaAlignment;
        if ((cmd.iova & (align - 1)) != 0 || ((last + 1) & (align - 1)) != 0) return Errno.EINVAL;
        if (cmd.page_size == 0) return Errno.EINVAL;
        if ((cmd.iova & (cmd.page_size - 1)) != 0 || ((last + 1) & (cmd.page_size - 1)) != 0) return Errno.EINVAL;
        if (!hwpt.PagingDomain.DirtyCapable) return Errno.EOPNOTSUPP;

        // length may be 2^64 - page_size: count bits without overflowing (last - iova + 1 may wrap to 0).
        ulong bits = (last - cmd.iova) / cmd.page_size + 1;
        var data = new DirtyBitmapWords(bits / 64 + (bits % 64 != 0 ? 1UL : 0));
        ulong iova = cmd.iova, pageSize = cmd.page_size;
        var spans = new List<(ulong Iova, ulong Last)>();
        foreach (var a in hwpt.Ioas.Iopt.AreasIn(cmd.iova, last))
            if (a.InDomains) spans.Add((Math.Max(a.Iova, cmd.iova), Math.Min(a.Last, last)));
        Kernel.Driver.ReadAndClearDirty(hwpt.PagingDomain, spans, (cmd.flags & IommuHwptGetDirtyBitmapFlags.NO_CLEAR) != 0,
            (start, len) =>
            {
                ulong s = Math.Max(start, iova), e = Math.Min(start + (len - 1), last);
                if (s <= e) data.SetBits((s - iova) / pageSize, (e - iova) / pageSize);
            });
        cmd.data = data;
        return Errno.OK;
    }

    /// <summary>
    /// IOMMU_GET_HW_INFO (iommufd_get_hw_info, intel_iommu_hw_info): VT-d data (cap/ecap), capabilities and the PASID
    /// width. With IOMMU_HW_INFO_FLAG_INPUT_TYPE the caller names the type it wants (DEFAULT or INTEL_VTD, else the
    /// driver's EOPNOTSUPP); without it the type is cleared. Copies min(data_len, kernel length) bytes, zero-fills
    /// the rest of the caller's data_len (EFAULT when the caller's buffer is shorter than data_len).
    /// </summary>
    public Errno GetHwInfo(IommuHwInfo cmd)
    {
        if ((cmd.flags & ~IommuHwInfoFlags.INPUT_TYPE) != 0) return Errno.EOPNOTSUPP;
        if ((cmd.flags & IommuHwInfoFlags.INPUT_TYPE) == 0) cmd.out_data_type = IommuHwInfoType.DEFAULT;
        Errno rc = Get(cmd.dev_id, out IommufdDevice idev);
        if (rc != Errno.OK) return rc;
        if (Kernel.ViommuDriver is IHwInfoDriver other) return GetHwInfoOf(other, idev, cmd);
        if (cmd.out_data_type != IommuHwInfoType.DEFAULT && cmd.out_data_type != IommuHwInfoType.INTEL_VTD) return Errno.EOPNOTSUPP;
        var spec = Kernel.Spec;
        // struct iommu_hw_info_vtd { u32 flags; u32 __reserved; u64 cap_reg; u64 ecap_reg; }
        ulong cap = (spec.Supports1G ? 1UL << 35 : 0) | (1UL << 34)            // SLLPS: 2M (, 1G)
                    | ((ulong)(spec.SecondStageLevels == 5 ? 0b1110 : 0b0110) << 8) // SAGAW 39/48(/57)
                    | (spec.FirstStage5Level ? 1UL << 60 : 0);                    // FL5LP
        ulong ecap = (spec.Nesting ? 1UL << 26 : 0) | (1UL << 40) | (1UL << 43)     // NEST, PASID, SMTS
                     | (spec.DirtyTracking ? 1UL << 50 : 0) | (spec.SupervisorRequests ? 1UL << 31 : 0);
        Span<byte> kernelData = stackalloc byte[(int)HwInfoVtdLen];
        kernelData.Clear();
        BitConverter.TryWriteBytes(kernelData[8..], cap);
        BitConverter.TryWriteBytes(kernelData[16..], ecap);
        if (cmd.data_len > 0)
        {
            // copy_to_user of min(len) then clear_user of the rest of data_len. cmd.data is the part of the caller's
            // buffer the caller keeps (it may be shorter than data_len); no buffer at all is a bad data_uptr.
            if (cmd.data is null) return Errno.EFAULT;
            int held = (int)Math.Min(cmd.data_len, (uint)cmd.data.Length);
            int copy = Math.Min(held, (int)HwInfoVtdLen);
            kernelData[..copy].CopyTo(cmd.data);
            cmd.data.AsSpan(copy, held - copy).Clear();
        }
        cmd.data_len = HwInfoVtdLen;
        cmd.out_data_type = IommuHwInfoType.INTEL_VTD;
        cmd.out_capabilities = (spec.DirtyTracking ? IommuHwCap.DIRTY_TRACKING : 0)
                               | (idev.Spec.PasidBits > 0 ? IommuHwCap.PCI_PASID_EXEC | IommuHwCap.PCI_PASID_PRIV : 0);
        cmd.out_max_pasid_log2 = (byte)(idev.Spec.PasidBits > 0 ? Math.Min(idev.Spec.PasidBits, spec.MaxPasidLog2) : 0);
        return Errno.OK;
    }

    /// <summary>
    /// iommufd_get_hw_info with another driver's hw_info (arm_smmu_hw_info: the SMMU's ID registers): the same copy and
    /// zero-fill rules; IOMMU_HW_CAP_DIRTY_TRACKING when the SMMU updates dirty state (IDR0.HTTU = 2), the PASID width
    /// from the device and IDR1.SSIDSIZE.
    /// </summary>
    private Errno GetHwInfoOf(IHwInfoDriver driver, IommufdDevice idev, IommuHwInfo cmd)
    {
        uint type = cmd.out_data_type;
        Errno rc = driver.HwInfo(idev, ref type, out byte[] kernelData);
        if (rc != Errno.OK) return rc;
        if (cmd.data_len > 0)
        {
            if (cmd.data is null) return Errno.EFAULT;
            int held = (int)Math.Min(cmd.data_len, (uint)cmd.data.Length);
            int copy = Math.Min(held, kernelData.Length);
            kernelData.AsSpan(0, copy).CopyTo(cmd.data);
            cmd.data.AsSpan(copy, held - copy).Clear();
        }
        cmd.data_len = (uint)kernelData.Length;
        cmd.out_data_type = type;
        uint idr0 = kernelData.Length >= 12 ? BitConverter.ToUInt32(kernelData, 8) : 0;
        uint idr1 = kernelData.Length >= 16 ? BitConverter.ToUInt32(kernelData, 12) : 0;
        int ssidBits = (int)((idr1 >> 6) & 0x1F);
        int pasidLog2 = Math.Min(idev.Spec.PasidBits, ssidBits);
        cmd.out_capabilities = (((idr0 >> 6) & 3) == 2 ? IommuHwCap.DIRTY_TRACKING : 0)
                               | (pasidLog2 > 0 ? IommuHwCap.PCI_PASID_EXEC | IommuHwCap.PCI_PASID_PRIV : 0);
        cmd.out_max_pasid_log2 = (byte)pasidLog2;
        return Errno.OK;
    }

    public Errno FaultQueueAlloc(IommuFaultAlloc cmd)
    {
        if (cmd.flags != 0) return Errno.EOPNOTSUPP;
        var f = Finalize(new FaultQueue(this));
        f.Fd = OpenEventqFd(f);
        cmd.out_fault_id = f.Id;
        cmd.out_fault_fd = (uint)f.Fd;
        return Errno.OK;
    }

    /// <summary>read() on a fault fd: whole groups, at most <paramref name="maxEntries"/> records.</summary>
    public Errno FaultRead(uint faultId, int maxEntries, out List<IommuHwptPgfault> faults)
    {
        faults = [];
        Kernel.HandlePageRequests();
        Errno rc = Get(faultId, out FaultQueue q);
        if (rc != Errno.OK) return rc;
        faults = q.Read(maxEntries);
        return Errno.OK;
    }

    /// <summary>write() of a page response on a fault fd.</summary>
    public Errno FaultRespond(uint faultId, IommuHwptPageResponse resp)
    {
        Errno rc = Get(faultId, out FaultQueue q);
        if (rc != Errno.OK) return rc;
        return q.Respond(resp.cookie, resp.code);
    }
}
