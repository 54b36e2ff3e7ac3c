using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Memory;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_ctx: one open /dev/iommu (or /dev/vfio/vfio in compat mode). Owns the object
/// table (ids from 1, lowest free first, as xa_alloc does), the bound devices' groups, and the
/// VFIO-compat IOAS. The ioctls are its methods (split by topic over partial files); each returns
/// an <see cref="Errno"/> and fills the out fields of its struct.
/// </summary>
public sealed partial class IommufdContext
{
    /// <summary>IOMMU_NO_PASID: the RID (requests without PASID).</summary>
    public const uint NoPasid = 0;

    private readonly SortedDictionary<uint, IommufdObject> _objects = [];
    private readonly Dictionary<int, IommufdGroup> _groups = [];

    internal IommufdContext(IommuKernel kernel, UserAddressSpace mm)
    {
        Kernel = kernel;
        Mm = mm;
    }

    public IommuKernel Kernel { get; }

    /// <summary>The address space of the process that opened the fd (user_va lives here).</summary>
    public UserAddressSpace Mm { get; }

    /// <summary>ictx->vfio_ioas: the IOAS the VFIO type1 compat calls act on.</summary>
    public Ioas? CompatIoas { get; private set; }

    /// <summary>IOMMU_OPTION_RLIMIT_MODE: 0 = per-user accounting, 1 = per-process.</summary>
    public ulong RlimitMode { get; private set; }

    /// <summary>Where pages mapped from now on are charged: the context's mode, or nowhere with CAP_IPC_LOCK.</summary>
    public PinAccountMode PagesAccountMode => Mm.Memlock.ModeFor(RlimitMode == 1 ? PinAccountMode.Mm : PinAccountMode.User);

    /// <summary>open("/dev/vfio/vfio") served by iommufd: the context accounts per process, as VFIO type1 does.</summary>
    internal void UseVfioAccounting() => RlimitMode = 1;

    public bool Closed { get; private set; }

    /// <summary>Installs a file in the owning process's fd table (set by <see cref="UserProcess.OpenIommufd"/>). A
    /// context opened without a process (library use) has no fd table: its event-queue fds are bare numbers that hold
    /// no reference.</summary>
    internal Func<object, int>? InstallFile { get; set; }

    private readonly List<EventqFile> _eventqFiles = [];
    private bool _fdReleased;

    /// <summary>The open fault and vEVENTQ fds of this context (each holds its object and the context).</summary>
    public IReadOnlyList<EventqFile> EventqFiles => _eventqFiles;

    /// <summary>iommufd_eventq_init: a new fd for a FAULT or VEVENTQ object, holding a reference on it and on this context.</summary>
    internal int OpenEventqFd(IommufdObject queue)
    {
        if (InstallFile is null) return Kernel.AllocateFd();
        var file = new EventqFile(queue);
        queue.Get();
        _eventqFiles.Add(file);
        return InstallFile(file);
    }

    internal void EventqFileReleased(EventqFile file)
    {
        _eventqFiles.Remove(file);
        if (_fdReleased && _eventqFiles.Count == 0) Close();
    }

    /// <summary>close() of the /dev/iommu fd: iommufd_fops_release runs only when the last reference to the context
    /// goes, and every open event-queue fd holds one.</summary>
    internal void ReleaseFd()
    {
        _fdReleased = true;
        if (_eventqFiles.Count == 0) Close();
    }

    public IEnumerable<IommufdObject> Objects => _objects.Values;

    // ---- object table -------------------------------------------------------------------

    public IommufdObject? Lookup(uint id) => id != 0 && _objects.TryGetValue(id, out var o) ? o : null;

    /// <summary>iommufd_get_object with a type: a missing id or one of another type is ENOENT.</summary>
    public Errno Get<T>(uint id, out T obj) where T : IommufdObject
    {
        if (Lookup(id) is T t)
        {
            obj = t;
            return Errno.OK;
        }
        obj = null!;
        return Errno.ENOENT;
    }

    /// <summary>iommufd_object_finalize: the lowest free id from 1.</summary>
    private T Finalize<T>(T obj) where T : IommufdObject
    {
        uint id = 1;
        foreach (var k in _objects.Keys)
        {
            if (k != id) break;
            id++;
        }
        obj.Id = id;
        _objects.Add(id, obj);
        return obj;
    }

    private void RemoveObject(IommufdObject obj)
    {
        _objects.Remove(obj.Id);
        obj.Destroyed = true;
        obj.Release();
    }

    /// <summary>IOMMU_DESTROY: only when no other object, attachment or driver holds the object (EBUSY).</summary>
    public Errno Destroy(IommuDestroy cmd)
    {
        if (Lookup(cmd.id) is not { } obj) return Errno.ENOENT;
        if (obj.Users > 0) return Errno.EBUSY;
        if (ReferenceEquals(obj, CompatIoas)) CompatIoas = null;
        RemoveObject(obj);
        return Errno.OK;
    }

    /// <summary>close(): unbinds every device, then destroys the objects leaf first.</summary>
    public void Close()
    {
        if (Closed) return;
        foreach (var idev in _objects.Values.OfType<IommufdDevice>().ToList()) DeviceUnbind(idev);
        foreach (var t in new[] { IommufdObjectType.Access, IommufdObjectType.HwQueue, IommufdObjectType.Veventq, IommufdObjectType.Vdevice, IommufdObjectType.HwptNested, IommufdObjectType.Viommu,
                     IommufdObjectType.HwptPaging, IommufdObjectType.Fault, IommufdObjectType.Ioas })
        {
            foreach (var o in _objects.Values.Where(o => o.Type == t).ToList()) RemoveObject(o);
        }
        CompatIoas = null;
        Closed = true;
    }

    // ---- devices ------------------------------------------------------------------------

    /// <summary>The device object for <paramref name="spec"/> in this context, if bound.</summary>
    public IommufdDevice? BoundDevice(DeviceSpec spec)
        => _groups.TryGetValue(spec.IommuGroup, out var g) ? g.Bound.FirstOrDefault(d => d.Spec == spec) : null;

    /// <summary>
    /// iommufd_device_bind: cache coherency is required (EINVAL), interrupts must be isolated
    /// unless unsafe interrupts are allowed (EPERM), and DMA ownership of the whole group is
    /// claimed (EBUSY if another context has it). The binding driver keeps a reference.
    /// </summary>
    public Errno DeviceBind(DeviceSpec spec, out IommufdDevice idev)
    {
        idev = null!;
        if (!spec.CacheCoherent) return Errno.EINVAL;
        if (BoundDevice(spec) is not null) return Errno.EBUSY;
        if (!spec.MsiIsolated && !Kernel.Spec.AllowUnsafeInterrupts) return Errno.EPERM;
        Errno rc = Kernel.ClaimDmaOwner(spec.IommuGroup, this);
        if (rc != Errno.OK) return rc;
        if (!_groups.TryGetValue(spec.IommuGroup, out var group))
            _groups[spec.IommuGroup] = group = new IommufdGroup(spec.IommuGroup, Kernel.GroupMembers(spec.IommuGroup));
        idev = Finalize(new IommufdDevice(this, spec, group));
        idev.Get(); // the binding driver's reference, dropped by unbind
        group.Bound.Add(idev);
        return Errno.OK;
    }

    /// <summary>iommufd_device_unbind: detaches every PASID, drops the driver's reference and the group's ownership.</summary>
    public void DeviceUnbind(IommufdDevice idev)
    {
        if (idev.Destroyed) return;
        foreach (uint pasid in idev.Group.AttachedPasids.ToList())
            if (idev.Group.Get(pasid) is { } a && a.Devices.Contains(idev)) DeviceDetach(idev, pasid);
        if (idev.Vdevice is { } v) RemoveObject(v);
        idev.Put();
        idev.Group.Bound.Remove(idev);
        if (idev.Group.Bound.Count == 0)
        {
            _groups.Remove(idev.Group.Number);
            Kernel.ReleaseDmaOwner(idev.Group.Number, this);
        }
        RemoveObject(idev);
    }

    // ---- attach / replace / detach ----------------------------------------------------------

    /// <summary>iommufd_device_attach: pt_id names an IOAS (auto HWPT) or an HWPT; out: the HWPT attached.</summary>
    public Errno DeviceAttach(IommufdDevice idev, uint pasid, ref uint ptId) => ChangePt(idev, pasid, ref ptId, replace: false);

    /// <summary>iommufd_device_replace: moves an existing attachment (of the whole group) to another HWPT.</summary>
    public Errno DeviceReplace(IommufdDevice idev, uint pasid, ref uint ptId) => ChangePt(idev, pasid, ref ptId, replace: true);

    public bool IsAttached(IommufdDevice idev, uint pasid) => idev.Group.Get(pasid) is { } a && a.Devices.Contains(idev);

    private Errno ChangePt(IommufdDevice idev, uint pasid, ref uint ptId, bool replace)
    {
        if (!idev.PasidValid(pasid)) return Errno.EINVAL;
        switch (Lookup(ptId))
        {
            case null:
                return Errno.ENOENT;
            case HwptBase hwpt:
                {
                    Errno rc = replace ? DoReplace(idev, pasid, hwpt) : DoAttach(idev, pasid, hwpt);
                    if (rc == Errno.OK) ptId = hwpt.Id;
                    return rc;
                }
            case Ioas ioas:
                // Auto domains are RID only: a PASID must name a PASID-compatible HWPT.
                if (pasid != NoPasid) return Errno.EINVAL;
                return AutoGetDomain(idev, pasid, ioas, ref ptId, replace);
            default:
                return Errno.EINVAL;
        }
    }

    /// <summary>
    /// iommufd_device_auto_get_domain: reuse a compatible auto HWPT of the IOAS (EINVAL from an
    /// attempt means incompatible: try the next), else make a new auto HWPT for this attachment.
    /// </summary>
    private Errno AutoGetDomain(IommufdDevice idev, uint pasid, Ioas ioas, ref uint ptId, bool replace)
    {
        Errno rc;
        foreach (var hwpt in ioas.HwptList.Where(h => h.AutoDomain).ToList())
        {
            rc = replace ? DoReplace(idev, pasid, hwpt) : DoAttach(idev, pasid, hwpt);
            if (rc == Errno.EINVAL) continue;
            if (rc == Errno.OK) ptId = hwpt.Id;
            return rc;
        }
        var domain = Kernel.Driver.AllocPagingDomain(nestParent: false, dirtyTracking: false);
        var auto = new HwptPaging(this, ioas, domain, autoDomain: true, fault: null, pasidCompat: false);
        rc = ioas.Iopt.AddDomain(domain);
        if (rc != Errno.OK)
        {
            Kernel.Driver.FreeDomain(domain);
            return rc;
        }
        auto.InIoas = true;
        ioas.Get();
        ioas.AddHwpt(auto);
        Finalize(auto);
        rc = replace ? DoReplace(idev, pasid, auto) : DoAttach(idev, pasid, auto);
        if (rc != Errno.OK)
        {
            RemoveObject(auto);
            return rc;
        }
        ptId = auto.Id;
        return Errno.OK;
    }

    /// <summary>iommufd_hwpt_pasid_compat: PASID attachments and the RID's HWPT must all be PASID-compatible.</summary>
    private static Errno PasidCompat(HwptBase hwpt, IommufdDevice idev, uint pasid)
    {
        if (pasid == NoPasid)
            return idev.Group.HasPasidAttached && !hwpt.PasidCompat ? Errno.EINVAL : Errno.OK;
        if (!hwpt.PasidCompat) return Errno.EINVAL;
        if (idev.Group.Get(NoPasid) is { } rid && !rid.Hwpt.PasidCompat) return Errno.EINVAL;
        return Errno.OK;
    }

    /// <summary>The device's reserved regions (its MSI window) enter the IOAS of a RID attachment.</summary>
    private static Errno ReserveDeviceRegions(IommufdDevice idev, Ioas ioas)
        => ioas.Iopt.ReserveIova(MsiWindowStart, MsiWindowLast, idev);

    public const ulong MsiWindowStart = 0xFEE0_0000UL;
    public const ulong MsiWindowLast = 0xFEEF_FFFFUL;

    /// <summary>Points the hardware entries of every member of the group at <paramref name="to"/>; all or nothing.</summary>
    private Errno SetGroupDomain(IommufdGroup group, uint pasid, HwptBase? to, HwptBase? from)
    {
        var done = new List<DeviceSpec>();
        foreach (var member in group.Members)
        {
            Errno rc = Kernel.Driver.SetDevicePasid(member, pasid, to?.Domain, from?.Domain);
            if (rc != Errno.OK)
            {
                foreach (var d in done) Kernel.Driver.SetDevicePasid(d, pasid, from?.Domain, to?.Domain);
                return rc;
            }
            done.Add(member);
        }
        return Errno.OK;
    }

    private Errno DoAttach(IommufdDevice idev, uint pasid, HwptBase hwpt)
    {
        Errno rc = PasidCompat(hwpt, idev, pasid);
        if (rc != Errno.OK) return rc;
        var attach = idev.Group.Get(pasid);
        if (attach is not null && !ReferenceEquals(attach.Hwpt, hwpt)) return Errno.EINVAL;
        if (attach is not null && attach.Devices.Contains(idev)) return Errno.EBUSY;

        var ioas = hwpt.PagingParent.Ioas;
        if (pasid == NoPasid)
        {
            rc = ReserveDeviceRegions(idev, ioas);
            if (rc != Errno.OK) return rc;
        }
        if (attach is null)
        {
            rc = SetGroupDomain(idev.Group, pasid, hwpt, null);
            if (rc != Errno.OK)
            {
                if (pasid == NoPasid) ioas.Iopt.RemoveReserved(idev);
                return rc;
            }
            attach = new IommufdGroup.Attach(hwpt);
            idev.Group.Set(pasid, attach);
        }
        attach.Devices.Add(idev);
        hwpt.Get();
        return Errno.OK;
    }

    private Errno DoReplace(IommufdDevice idev, uint pasid, HwptBase hwpt)
    {
        var attach = idev.Group.Get(pasid);
        if (attach is null || !attach.Devices.Contains(idev)) return Errno.EINVAL;
        var old = attach.Hwpt;
        if (ReferenceEquals(old, hwpt)) return Errno.OK;
        Errno rc = PasidCompat(hwpt, idev, pasid);
        if (rc != Errno.OK) return rc;

        var oldIoas = old.PagingParent.Ioas;
        var newIoas = hwpt.PagingParent.Ioas;
        bool moveReserved = pasid == NoPasid && !ReferenceEquals(oldIoas, newIoas);
        if (moveReserved)
        {
            var reserved = new List<IommufdDevice>();
            foreach (var d in attach.Devices)
            {
                rc = ReserveDeviceRegions(d, newIoas);
                if (rc != Errno.OK)
                {
                    foreach (var r in reserved) newIoas.Iopt.RemoveReserved(r);
                    return rc;
                }
                reserved.Add(d);
            }
        }
        rc = SetGroupDomain(idev.Group, pasid, hwpt, old);
        if (rc != Errno.OK)
        {
            if (moveReserved) foreach (var d in attach.Devices) newIoas.Iopt.RemoveReserved(d);
            return rc;
        }
        if (moveReserved) foreach (var d in attach.Devices) oldIoas.Iopt.RemoveReserved(d);
        foreach (var d in attach.Devices) old.Fault?.AutoRespond(d, pasid);
        attach.Hwpt = hwpt;
        foreach (var _ in attach.Devices)
        {
            hwpt.Get();
            old.Put();
        }
        DestroyAutoIfUnused(old);
        return Errno.OK;
    }

    /// <summary>
    /// iommufd_device_detach: the group's hardware entries are blocked when its last device
    /// leaves; the device's reserved regions leave the IOAS; an auto HWPT dies with its last user.
    /// </summary>
    public Errno DeviceDetach(IommufdDevice idev, uint pasid)
    {
        var attach = idev.Group.Get(pasid);
        if (attach is null || !attach.Devices.Contains(idev)) return Errno.EINVAL;
        var hwpt = attach.Hwpt;
        attach.Devices.Remove(idev);
        if (attach.Devices.Count == 0)
        {
            SetGroupDomain(idev.Group, pasid, null, hwpt);
            idev.Group.Remove(pasid);
        }
        if (pasid == NoPasid) hwpt.PagingParent.Ioas.Iopt.RemoveReserved(idev);
        hwpt.Fault?.AutoRespond(idev, pasid);
        hwpt.Put();
        DestroyAutoIfUnused(hwpt);
        return Errno.OK;
    }

    private void DestroyAutoIfUnused(HwptBase hwpt)
    {
        if (hwpt is HwptPaging { AutoDomain: true, Users: 0, Destroyed: false } auto) RemoveObject(auto);
    }
}
