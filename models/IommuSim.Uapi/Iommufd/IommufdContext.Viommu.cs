namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// The vIOMMU ioctls of iommufd, in the kernel's check order: VIOMMU_ALLOC and VDEVICE_ALLOC (viommu.c),
/// VEVENTQ_ALLOC and the vEVENTQ's read() (eventq.c), HW_QUEUE_ALLOC (viommu.c), IOAS_CHANGE_PROCESS (ioas.c).
/// Driver work goes through <see cref="IViommuDriver"/> / <see cref="IViommuOps"/>.
/// </summary>
public sealed partial class IommufdContext
{
    /// <summary>PAGE_SIZE of the host.</summary>
    private const ulong HostPageSize = 4096;

    /// <summary>
    /// IOMMU_VIOMMU_ALLOC (iommufd_viommu_alloc_ioctl): flags or type DEFAULT are EOPNOTSUPP; then the device (ENOENT);
    /// a driver without get_viommu_size/viommu_init, or one that sizes the type 0, EOPNOTSUPP; the HWPT_PAGING (ENOENT)
    /// must be a nest parent (EINVAL); viommu_init may fail with the driver's errno. __reserved is not checked (as in
    /// the kernel). The vIOMMU holds its HWPT.
    /// </summary>
    public Errno ViommuAlloc(IommuViommuAlloc cmd)
    {
        if (cmd.flags != 0 || cmd.type == (uint)IommuViommuType.DEFAULT) return Errno.EOPNOTSUPP;
        Errno rc = Get(cmd.dev_id, out IommufdDevice idev);
        if (rc != Errno.OK) return rc;
        if (Kernel.ViommuDriver is not { } driver) return Errno.EOPNOTSUPP;
        if (!driver.GetViommuSize(idev, cmd.type)) return Errno.EOPNOTSUPP;
        rc = Get(cmd.hwpt_id, out HwptPaging hwpt);
        if (rc != Errno.OK) return rc;
        if (!hwpt.NestParent) return Errno.EINVAL;
        var viommu = new Viommu(this, (IommuViommuType)cmd.type, hwpt, driver.IommuDev(idev));
        hwpt.Get();
        rc = driver.ViommuInit(viommu, hwpt, cmd);
        if (rc == Errno.OK && viommu.Ops is null) rc = Errno.EOPNOTSUPP; // a driver bug in the kernel (WARN_ON_ONCE)
        if (rc != Errno.OK)
        {
            viommu.Release(); // iommufd_object_abort_and_destroy: the vIOMMU never got an id
            return rc;
        }
        cmd.out_viommu_id = Finalize(viommu).Id;
        return Errno.OK;
    }

    /// <summary>
    /// IOMMU_VDEVICE_ALLOC (iommufd_vdevice_alloc_ioctl): the vIOMMU (ENOENT), the device (ENOENT), the same physical
    /// IOMMU (EINVAL), one vDEVICE per device (EEXIST), one per virtual id in the vIOMMU (EEXIST), then the driver's
    /// vdevice_init. The vDEVICE holds the vIOMMU and the device.
    /// </summary>
    public Errno VdeviceAlloc(IommuVdeviceAlloc cmd)
    {
        Errno rc = Get(cmd.viommu_id, out Viommu viommu);
        if (rc != Errno.OK) return rc;
        rc = Get(cmd.dev_id, out IommufdDevice idev);
        if (rc != Errno.OK) return rc;
        if (Kernel.ViommuDriver is not { } driver || !Equals(viommu.IommuDev, driver.IommuDev(idev))) return Errno.EINVAL;
        if (idev.Vdevice is not null) return Errno.EEXIST;
        var v = new Vdevice(this, viommu, idev, cmd.virt_id);
        if (!viommu.TryAddVdevice(v)) return Errno.EEXIST;
        viommu.Get();
        idev.Get();
        idev.Vdevice = v;
        if (viommu.Ops is { } ops)
        {
            rc = ops.VdeviceInit(v);
            if (rc != Errno.OK)
            {
                v.Release(); // iommufd_object_abort_and_destroy
                return rc;
            }
            v.DriverInitialized = true;
        }
        cmd.out_vdevice_id = Finalize(v).Id;
        return Errno.OK;
    }

    /// <summary>
    /// IOMMU_VEVENTQ_ALLOC (iommufd_veventq_alloc): flags, __reserved or type DEFAULT are EOPNOTSUPP; depth 0 EINVAL;
    /// the vIOMMU (ENOENT); one vEVENTQ per type per vIOMMU (EEXIST). Any other type is accepted (the core does not ask
    /// the driver). Returns the object id and a new fd.
    /// </summary>
    public Errno VeventqAlloc(IommuVeventqAlloc cmd)
    {
        if (cmd.flags != 0 || cmd.__reserved != 0 || cmd.type == IommuVeventqType.DEFAULT) return Errno.EOPNOTSUPP;
        if (cmd.veventq_depth == 0) return Errno.EINVAL;
        Errno rc = Get(cmd.viommu_id, out Viommu viommu);
        if (rc != Errno.OK) return rc;
        if (viommu.FindVeventq(cmd.type) is not null) return Errno.EEXIST;
        var q = new Veventq(this, viommu, cmd.type, cmd.veventq_depth);
        viommu.Get();
        viommu.AddVeventq(q);
        q.Fd = OpenEventqFd(q);
        cmd.out_veventq_id = Finalize(q).Id;
        cmd.out_veventq_fd = (uint)q.Fd;
        return Errno.OK;
    }

    /// <summary>read() of <paramref name="count"/> bytes on a vEVENTQ's fd (found by its object id).</summary>
    public Errno VeventqRead(uint veventqId, ulong count, List<Vevent> events, out ulong done)
    {
        done = 0;
        events.Clear();
        Kernel.ViommuDriver?.HandleEvents(); // the event IRQ has run by the time user space reads
        Errno rc = Get(veventqId, out Veventq q);
        return rc != Errno.OK ? rc : q.Read(count, 0, events, out done);
    }

    /// <summary>
    /// IOMMU_HW_QUEUE_ALLOC (iommufd_hw_queue_alloc_ioctl): flags or type DEFAULT EOPNOTSUPP; length 0 EINVAL;
    /// nesting_parent_iova + length − 1 wrapping EOVERFLOW; the vIOMMU (ENOENT); a vIOMMU whose ops lack
    /// get_hw_queue_size/hw_queue_init_phys, or size the type 0, EOPNOTSUPP; then iommufd_hw_queue_alloc_phys pins the
    /// page-aligned range through an internal access on the nest parent's IOAS (ERANGE when the aligned length
    /// wraps, the pin's errno when it is not mapped, EFAULT when its pages are not physically contiguous); finally
    /// the driver's hw_queue_init_phys with the physical base.
    /// </summary>
    public Errno HwQueueAlloc(IommuHwQueueAlloc cmd)
    {
        if (cmd.flags != 0 || cmd.type == IommuHwQueueType.DEFAULT) return Errno.EOPNOTSUPP;
        if (cmd.length == 0) return Errno.EINVAL;
        if (cmd.nesting_parent_iova > ulong.MaxValue - (cmd.length - 1)) return Errno.EOVERFLOW;
        Errno rc = Get(cmd.viommu_id, out Viommu viommu);
        if (rc != Errno.OK) return rc;
        if (viommu.Ops is not { } ops || !ops.GetHwQueueSize(viommu, cmd.type)) return Errno.EOPNOTSUPP;

        var hwq = new HwQueue(this, viommu, cmd.type, cmd.nesting_parent_iova, cmd.length);
        rc = HwQueuePinPhys(cmd, viommu, out var access, out ulong basePa);
        if (rc != Errno.OK) return rc;
        hwq.Access = access;
        hwq.BasePa = basePa;
        viommu.Get();
        rc = ops.HwQueueInitPhys(hwq, cmd.index, basePa);
        if (rc != Errno.OK)
        {
            hwq.Release();
            return rc;
        }
        hwq.DriverInitialized = true;
        cmd.out_hw_queue_id = Finalize(hwq).Id;
        return Errno.OK;
    }

    /// <summary>iommufd_hw_queue_alloc_phys: pin [PAGE_ALIGN_DOWN(iova), +PAGE_ALIGN(offset + length)) and require one physical run.</summary>
    private Errno HwQueuePinPhys(IommuHwQueueAlloc cmd, Viommu viommu, out IommufdAccess? access, out ulong basePa)
    {
        access = null;
        basePa = 0;
        ulong aligned = cmd.nesting_parent_iova & ~(HostPageSize - 1);
        ulong offset = cmd.nesting_parent_iova - aligned;
        if (offset > ulong.MaxValue - cmd.length) return Errno.ERANGE;
        ulong length = offset + cmd.length;
        if (length > ulong.MaxValue - (HostPageSize - 1)) return Errno.ERANGE;
        length = (length + HostPageSize - 1) / HostPageSize * HostPageSize;

        var ioas = viommu.Hwpt.Ioas;
        var a = new IommufdAccess(this, ioas) { Internal = true };
        Errno rc = ioas.Iopt.AddAccess(a);
        if (rc != Errno.OK) return rc;
        ioas.Get();
        rc = a.Pin(aligned, length);
        if (rc == Errno.OK)
        {
            // page_to_pfn(pages[i]) == page_to_pfn(pages[i - 1]) + 1 for every page.
            var elements = new List<Iopt.IoPagetable.PagesElement>();
            var runs = new List<(ulong Va, ulong Pa, ulong Length)>();
            rc = ioas.Iopt.GetPages(aligned, length, elements);
            ulong expect = ulong.MaxValue;
            foreach (var e in elements)
            {
                if (rc != Errno.OK) break;
                rc = e.Pages.Resolve(e.StartByte, e.Length, false, runs);
                foreach (var (_, pa, len) in runs)
                {
                    if (expect != ulong.MaxValue && pa != expect) rc = Errno.EFAULT;
                    if (expect == ulong.MaxValue) basePa = pa;
                    expect = pa + len;
                }
            }
        }
        if (rc != Errno.OK)
        {
            a.Release();
            return rc;
        }
        basePa += offset;
        access = a;
        return Errno.OK;
    }

    /// <summary>
    /// IOMMU_IOAS_CHANGE_PROCESS (iommufd_ioas_change_process): __reserved EOPNOTSUPP; any area not from
    /// IOAS_MAP_FILE EINVAL; otherwise the pinned-page accounting moves to the calling process (a script is one
    /// process, so the charges stay where they are).
    /// </summary>
    public Errno IoasChangeProcess(IommuIoasChangeProcess cmd)
    {
        if (cmd.__reserved != 0) return Errno.EOPNOTSUPP;
        foreach (var ioas in _objects.Values.OfType<Ioas>())
            foreach (var area in ioas.Iopt.Areas)
                if (area.Pages.File is null) return Errno.EINVAL;
        return Errno.OK;
    }
}
