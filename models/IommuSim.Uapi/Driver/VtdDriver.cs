using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Driver;

/// <summary>
/// The host kernel's VT-d driver (drivers/iommu/intel): turns domains into second-stage tables,
/// allocates domain ids, writes scalable-mode context and PASID-table entries on attach, replace
/// and detach, and sends queued invalidations. Every flush is synchronous (descriptors + wait,
/// run until the wait completes), which is what makes a strict unmap safe.
/// </summary>
public sealed class VtdDriver : IIommuDriver
{
    /// <summary>DID 0 is reserved by the architecture (caching mode); Linux uses DID 1 (FLPT_DEFAULT_DID) for pass-through.</summary>
    public const ushort FlptDefaultDid = 1;
    private const ushort FirstDynamicDid = 2;

    /// <summary>Above this address-mask a page-selective flush becomes domain-selective (cap_max_amask_val).</summary>
    private const int MaxAddressMask = 18;

    private readonly SortedSet<ushort> _freeDids = [];
    private ushort _nextDid = FirstDynamicDid;
    private readonly List<InvalidationDescriptor> _batch = [];

    public VtdDriver(IHardwarePort port, PlatformSpec spec)
    {
        Port = port;
        Spec = spec;
        Identity = new VtdIdentityDomain();
    }

    public IHardwarePort Port { get; }
    public PlatformSpec Spec { get; }
    public VtdIdentityDomain Identity { get; }

    /// <summary>Invalidation batches sent (each ends with a wait); for tests and statistics.</summary>
    public long FlushCount { get; private set; }

    /// <summary>Descriptors sent, waits excluded.</summary>
    public long DescriptorCount { get; private set; }

    // ---- domains --------------------------------------------------------------------------

    public VtdPagingDomain AllocPagingDomain(bool nestParent, bool dirtyTracking, int? levels = null, PageSize? maxPageSize = null)
    {
        var table = new PageTable(new HostTableMemory(Port.Memory, Port.Frames), TableStage.Second, levels ?? Spec.SecondStageLevels);
        PageSize max = maxPageSize ?? (Spec.Supports1G ? PageSize.Size1G : PageSize.Size2M);
        return new VtdPagingDomain(this, AllocateDid(), table, max, nestParent, dirtyTracking);
    }

    public VtdNestedDomain AllocNestedDomain(VtdPagingDomain parent, VtdS1Flags flags, ulong pgtblAddr, uint addrWidth)
    {
        var d = new VtdNestedDomain(AllocateDid(), parent, flags, pgtblAddr, addrWidth);
        parent.AddChild(d);
        return d;
    }

    /// <summary>Frees a detached domain: its DID is flushed from every cache and can be reused.</summary>
    public void FreeDomain(VtdDomain d)
    {
        if (d.Freed || d is VtdIdentityDomain) return;
        if (d.Attachments.Count != 0) throw new InvalidOperationException($"domain {d.DomainId} is still attached");
        switch (d)
        {
            case VtdPagingDomain p:
                if (p.Children.Count != 0) throw new InvalidOperationException($"domain {d.DomainId} still has nested children");
                if (p.Table.MappedBytes > 0) p.Table.Unmap(0, p.Table.MaxAddress + 1);
                Port.Frames.FreeFrame(p.Table.RootAddress);
                break;
            case VtdNestedDomain n:
                n.Parent.RemoveChild(n);
                break;
        }
        _batch.Add(InvalidationDescriptor.IotlbDomain(d.DomainId));
        Submit();
        d.Freed = true;
        _freeDids.Add(d.DomainId);
    }

    private ushort AllocateDid()
    {
        if (_freeDids.Count > 0)
        {
            ushort d = _freeDids.Min;
            _freeDids.Remove(d);
            return d;
        }
        if (_nextDid == ushort.MaxValue) throw new InvalidOperationException("domain ids exhausted");
        return _nextDid++;
    }

    // ---- attach / detach -----------------------------------------------------------------

    /// <summary>
    /// Points (device, PASID) at <paramref name="domain"/> (or blocks it when null), replacing
    /// <paramref name="old"/>. Writes the context entry on first use, then the PASID entry, then
    /// flushes the PASID cache and whatever the old DID may have cached. Validation that the
    /// hardware driver does at attach time (nested stage-1 format) returns an errno and changes
    /// nothing.
    /// </summary>
    public Errno SetDevicePasid(DeviceSpec dev, uint pasid, VtdDomain? domain, VtdDomain? old)
    {
        if (domain is VtdNestedDomain n)
        {
            if (n.AddrWidth != 48 && n.AddrWidth != 57) return Errno.EINVAL;
            if (n.AddrWidth == 57 && !Spec.FirstStage5Level) return Errno.EINVAL;
            if ((n.Flags & VtdS1Flags.SRE) != 0 && !Spec.SupervisorRequests) return Errno.EINVAL;
            if ((n.Flags & VtdS1Flags.EAFE) != 0 && !Spec.ExtendedAccessedFlag) return Errno.EINVAL;
            // intel_pasid_setup_nested refuses to overwrite a live entry; replace has its own path.
            if (old is null && Port.Tables.ReadPasidEntry(dev.Rid, pasid).Present) return Errno.EBUSY;
        }
        if (ReferenceEquals(domain, old)) return Errno.OK;

        if (!Port.Tables.ReadContext(dev.Rid).Present)
        {
            Port.Tables.SetContext(dev.Rid, ridPasid: 0, deviceTlbEnable: dev.Ats, pageRequestEnable: dev.PageRequests);
            _batch.Add(InvalidationDescriptor.ContextDevice(0, dev.Rid.Value));
        }

        if (domain is null) Port.Tables.ClearPasidEntry(dev.Rid, pasid);
        else Port.Tables.SetPasidEntry(dev.Rid, pasid, EntryFor(domain, dev));

        if (old is not null)
        {
            old.RemoveAttachment(dev, pasid);
            _batch.Add(InvalidationDescriptor.PasidCacheEntry(old.DomainId, pasid));
            AddFlushAll(old, dev, pasid);
        }
        if (domain is not null)
        {
            domain.AddAttachment(dev, pasid);
            _batch.Add(InvalidationDescriptor.PasidCacheEntry(domain.DomainId, pasid));
        }
        Submit();
        return Errno.OK;
    }

    private PasidTableEntry EntryFor(VtdDomain domain, DeviceSpec dev) => domain switch
    {
        VtdPagingDomain p => new PasidTableEntry(true, Pgtt.SecondStage, p.DomainId, 0, 0, p.Table.RootAddress, p.Table.Levels,
            DirtyTracking: p.DirtyTracking, PageRequestEnable: dev.PageRequests),
        VtdNestedDomain n => new PasidTableEntry(true, Pgtt.Nested, n.DomainId, n.PgtblAddr, n.Levels,
            n.Parent.Table.RootAddress, n.Parent.Table.Levels, DirtyTracking: n.Parent.DirtyTracking,
            PageRequestEnable: dev.PageRequests, SupervisorRequests: (n.Flags & VtdS1Flags.SRE) != 0),
        VtdIdentityDomain => new PasidTableEntry(true, Pgtt.PassThrough, FlptDefaultDid, 0, 0, 0, 0),
        _ => throw new ArgumentException($"unknown domain type {domain.GetType().Name}", nameof(domain)),
    };

    // ---- flushing ------------------------------------------------------------------------

    /// <summary>
    /// After a stage-2 unmap: page-selective IOTLB flush for the domain, device-TLB flush for ATS
    /// devices, and, for a nest parent, a flush of every nested child's combined entries (their
    /// IOTLB entries are tagged with the child's DID and the guest IOVA, so the GPA range cannot
    /// select them).
    /// </summary>
    internal void FlushRange(VtdPagingDomain d, ulong iova, ulong length)
    {
        var (addr, am) = InvalidationDescriptor.CoveringMask(iova, length);
        _batch.Add(am > MaxAddressMask ? InvalidationDescriptor.IotlbDomain(d.DomainId) : InvalidationDescriptor.IotlbPages(d.DomainId, addr, am));
        foreach (var (dev, pasid) in d.Attachments)
        {
            if (!dev.Ats) continue;
            _batch.Add(pasid == 0 ? InvalidationDescriptor.DeviceTlb(dev.Rid.Value, addr, am) : PasidDeviceTlb(dev, pasid, addr, am));
        }
        foreach (var child in d.Children)
        {
            _batch.Add(InvalidationDescriptor.IotlbDomain(child.DomainId));
            foreach (var (dev, pasid) in child.Attachments)
            {
                _batch.Add(InvalidationDescriptor.PasidIotlbAll(child.DomainId, pasid));
                if (dev.Ats) _batch.Add(InvalidationDescriptor.DeviceTlbAll(dev.Rid.Value));
            }
        }
        Submit();
    }

    /// <summary>
    /// A guest's stage-1 invalidation (one IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 entry) forwarded to
    /// every (device, PASID) the nested domain is attached to: PASID-based IOTLB invalidation,
    /// page-selective or, for addr 0 / npages U64_MAX, all of the PASID; plus device TLBs for ATS.
    /// </summary>
    public void FlushNestedUser(VtdNestedDomain d, ulong addr, ulong npages, bool leafOnly)
    {
        bool all = npages == ulong.MaxValue;
        ulong bytes = all ? 0 : npages << 12;
        int am = 0;
        if (!all && npages > 0) (addr, am) = InvalidationDescriptor.CoveringMask(addr, bytes);
        if (!all && npages == 0) return;
        foreach (var (dev, pasid) in d.Attachments)
        {
            _batch.Add(all || am > MaxAddressMask
                ? InvalidationDescriptor.PasidIotlbAll(d.DomainId, pasid)
                : InvalidationDescriptor.PasidIotlbPages(d.DomainId, pasid, addr, am, leafOnly));
            if (dev.Ats)
                _batch.Add(all ? InvalidationDescriptor.DeviceTlbAll(dev.Rid.Value)
                    : pasid == 0 ? InvalidationDescriptor.DeviceTlb(dev.Rid.Value, addr, am) : PasidDeviceTlb(dev, pasid, addr, am));
        }
        if (d.Attachments.Count == 0) _batch.Add(InvalidationDescriptor.IotlbDomain(d.DomainId));
        Submit();
    }

    /// <summary>
    /// intel_iommu_set_dirty_tracking: sets or clears SLADE in every PASID entry using the domain
    /// (its own and its nested children's), then flushes PASID cache and IOTLB so the hardware
    /// reloads the entries and starts setting D bits.
    /// </summary>
    public void SetDirtyTracking(VtdPagingDomain d, bool enable)
    {
        if (d.DirtyTracking == enable) return;
        d.DirtyTracking = enable;
        Rewrite(d);
        foreach (var c in d.Children) Rewrite(c);
        Submit();
    }

    private void Rewrite(VtdDomain d)
    {
        foreach (var (dev, pasid) in d.Attachments)
        {
            Port.Tables.SetPasidEntry(dev.Rid, pasid, EntryFor(d, dev));
            _batch.Add(InvalidationDescriptor.PasidCacheEntry(d.DomainId, pasid));
        }
        _batch.Add(InvalidationDescriptor.IotlbDomain(d.DomainId));
    }

    /// <summary>
    /// Reads (and unless <paramref name="noClear"/>, clears) the second-stage dirty bits of each
    /// mapped span (intel_iommu_read_and_clear_dirty, called per area by iommufd), calling
    /// <paramref name="setDirty"/> with each dirty leaf's range.
    /// Clearing is followed by an IOTLB flush so that the next write sets D again.
    /// </summary>
    public void ReadAndClearDirty(VtdPagingDomain d, IReadOnlyList<(ulong Iova, ulong Last)> spans, bool noClear, Action<ulong, ulong> setDirty)
    {
        bool cleared = false;
        foreach (var (first, last) in spans)
        {
            ulong va = first;
            while (va <= last && va <= d.Table.MaxAddress)
            {
                ulong next;
                if (d.Table.TryTranslate(va, out _, out _, out var size))
                {
                    ulong leaf = va & ~(size.Bytes() - 1);
                    if (d.Table.TestDirty(va, clear: !noClear))
                    {
                        setDirty(leaf, size.Bytes());
                        cleared |= !noClear;
                    }
                    next = leaf + size.Bytes();
                }
                else next = (va & ~0xFFFUL) + 0x1000;
                if (next <= va) break; // the top of the address space
                va = next;
            }
        }
        if (cleared)
        {
            _batch.Add(InvalidationDescriptor.IotlbDomain(d.DomainId));
            Submit();
        }
    }

    /// <summary>
    /// Answers a page group of a recoverable fault (page group response descriptor). Posted, not
    /// waited for: it may be sent from the page-request path inside a hardware event, and nothing
    /// in the kernel depends on its completion (the device resumes when it arrives).
    /// </summary>
    public void PageResponse(DeviceSpec dev, uint pasid, int groupIndex, PageResponseCode code)
    {
        DescriptorCount++;
        Port.Post([PageGroupResponse(dev.Rid.Value, pasid, groupIndex, code)]);
    }

    /// <summary>
    /// The page group response descriptor (VT-d 6.5.2.9; the kernel's intel_page_response builds QI_PGRP_RESP with the
    /// requester id, PASID, response code and page-request group index). The one place it is built: the uAPI fault
    /// path above and the run-time I/O page-fault handler (DmaApi/IopfHandler) both send it.
    /// </summary>
    public static InvalidationDescriptor PageGroupResponse(ushort requesterId, uint pasid, int groupIndex, PageResponseCode code)
        => new(InvalidationType.PageGroupResponse, InvalidationGranularity.Device,
            Pasid: pasid, RequesterId: requesterId, ResponseCode: code, PageGroupIndex: groupIndex);

    private void AddFlushAll(VtdDomain old, DeviceSpec dev, uint pasid)
    {
        if (old is VtdNestedDomain) _batch.Add(InvalidationDescriptor.PasidIotlbAll(old.DomainId, pasid));
        else _batch.Add(InvalidationDescriptor.IotlbDomain(old.DomainId));
        if (dev.Ats) _batch.Add(InvalidationDescriptor.DeviceTlbAll(dev.Rid.Value));
    }

    private static InvalidationDescriptor PasidDeviceTlb(DeviceSpec dev, uint pasid, ulong addr, int am)
        => new(InvalidationType.PasidDeviceTlb, InvalidationGranularity.Page, Pasid: pasid, RequesterId: dev.Rid.Value, Address: addr, AddressMask: am);

    private void Submit()
    {
        if (_batch.Count == 0) return;
        DescriptorCount += _batch.Count;
        FlushCount++;
        Port.SubmitAndWait(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_batch));
        _batch.Clear();
    }

    // ---- iommu_ops (IIommuDriver) --------------------------------------------------------

    public string Architecture => "vtd";
    IommuDomain IIommuDriver.Identity => Identity;
    IommuPagingDomain IIommuDriver.AllocPagingDomain(bool nestParent, bool dirtyTracking, int? levels, PageSize? maxPageSize)
        => AllocPagingDomain(nestParent, dirtyTracking, levels, maxPageSize);
    void IIommuDriver.SetDirtyTracking(IommuPagingDomain domain, bool enable) => SetDirtyTracking((VtdPagingDomain)domain, enable);
    void IIommuDriver.ReadAndClearDirty(IommuPagingDomain domain, IReadOnlyList<(ulong Iova, ulong Last)> spans, bool noClear, Action<ulong, ulong> setDirty)
        => ReadAndClearDirty((VtdPagingDomain)domain, spans, noClear, setDirty);
}
