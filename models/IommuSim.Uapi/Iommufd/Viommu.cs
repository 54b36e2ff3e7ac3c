namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// The vIOMMU entries of a driver's <c>struct iommu_ops</c>: <c>get_viommu_size</c> and <c>viommu_init</c>. A driver
/// without them (Linux's intel-iommu, hence the simulated VT-d) makes IOMMU_VIOMMU_ALLOC fail with EOPNOTSUPP.
/// </summary>
public interface IViommuDriver
{
    /// <summary>get_viommu_size: whether the driver can back a vIOMMU of <paramref name="type"/> for the device (0 = no).</summary>
    bool GetViommuSize(IommufdDevice idev, uint type);

    /// <summary>__iommu_get_iommu_dev: the physical IOMMU instance the device sits behind.</summary>
    object IommuDev(IommufdDevice idev);

    /// <summary>viommu_init: set <see cref="Viommu.Ops"/> (and fill the type's out data); an error aborts the allocation.</summary>
    Errno ViommuInit(Viommu viommu, HwptPaging parent, IommuViommuAlloc cmd);

    /// <summary>The driver's event interrupt thread: pending hardware events go where they belong (a vEVENTQ or the host log).</summary>
    void HandleEvents();
}

/// <summary>struct iommufd_viommu_ops: what a vIOMMU of one driver type can do. Members a type lacks answer false / EOPNOTSUPP.</summary>
public interface IViommuOps
{
    /// <summary>ops->destroy, before the core drops the vIOMMU's references.</summary>
    void Destroy(Viommu viommu);

    /// <summary>ops->alloc_domain_nested: a nested domain from the driver data (the guest STE for SMMUv3).</summary>
    Errno AllocDomainNested(Viommu viommu, uint flags, IommuHwptAlloc cmd, out object? domain);

    /// <summary>ops->cache_invalidate: <paramref name="entryNum"/> in = entries, out = entries handled.</summary>
    Errno CacheInvalidate(Viommu viommu, IommuHwptInvalidate cmd, ref uint entryNum);

    /// <summary>ops->vdevice_size/vdevice_init: driver work when a vDEVICE is created (null = none).</summary>
    Errno VdeviceInit(Vdevice vdev);

    /// <summary>vdev->destroy set by vdevice_init.</summary>
    void VdeviceDestroy(Vdevice vdev);

    /// <summary>ops->get_hw_queue_size: whether the type of HW queue is supported (false when the op is absent).</summary>
    bool GetHwQueueSize(Viommu viommu, uint type);

    /// <summary>ops->hw_queue_init_phys: program a guest queue at host physical <paramref name="basePa"/>.</summary>
    Errno HwQueueInitPhys(HwQueue hwQueue, uint index, ulong basePa);

    /// <summary>hw_queue->destroy set by hw_queue_init_phys.</summary>
    void HwQueueDestroy(HwQueue hwQueue);
}

/// <summary>
/// struct iommufd_viommu: the per-VM slice of a physical IOMMU, wrapping the VM's nest-parent
/// stage 2. Holds that HWPT; vDEVICEs, vEVENTQs, HW queues and nested HWPTs allocated on it hold the vIOMMU.
/// </summary>
public sealed class Viommu : IommufdObject
{
    private readonly Dictionary<ulong, Vdevice> _vdevs = [];
    private readonly List<Veventq> _veventqs = [];

    internal Viommu(IommufdContext ictx, IommuViommuType type, HwptPaging hwpt, object iommuDev) : base(ictx)
    {
        ViommuType = type;
        Hwpt = hwpt;
        IommuDev = iommuDev;
    }

    public override IommufdObjectType Type => IommufdObjectType.Viommu;

    public IommuViommuType ViommuType { get; }
    public HwptPaging Hwpt { get; }

    /// <summary>viommu->iommu_dev: the physical IOMMU; a vDEVICE's device must sit behind the same one.</summary>
    public object IommuDev { get; }

    /// <summary>viommu->ops, set by the driver's viommu_init.</summary>
    public IViommuOps? Ops { get; set; }

    /// <summary>The driver's own state (struct arm_vsmmu for SMMUv3).</summary>
    public object? DriverData { get; set; }

    /// <summary>viommu->vdevs: virtual id (the guest's vSID / vRID) → vDEVICE.</summary>
    public IReadOnlyDictionary<ulong, Vdevice> Vdevs => _vdevs;

    /// <summary>viommu->veventqs: at most one per type.</summary>
    public IReadOnlyList<Veventq> Veventqs => _veventqs;

    internal bool TryAddVdevice(Vdevice v) => _vdevs.TryAdd(v.VirtId, v);
    internal void RemoveVdevice(Vdevice v)
    {
        if (_vdevs.TryGetValue(v.VirtId, out var cur) && ReferenceEquals(cur, v)) _vdevs.Remove(v.VirtId);
    }

    /// <summary>iommufd_viommu_find_veventq.</summary>
    public Veventq? FindVeventq(uint type) => _veventqs.Find(q => q.VeventqType == type);
    internal void AddVeventq(Veventq q) => _veventqs.Add(q);
    internal void RemoveVeventq(Veventq q) => _veventqs.Remove(q);

    /// <summary>iommufd_viommu_find_dev: the device of the vDEVICE with this virtual id, if any.</summary>
    public IommufdDevice? FindDev(ulong virtId) => _vdevs.TryGetValue(virtId, out var v) ? v.Device : null;

    /// <summary>iommufd_viommu_get_vdev_id: the virtual id of the device's vDEVICE on this vIOMMU (ENOENT: none).</summary>
    public Errno GetVdevId(IommufdDevice idev, out ulong virtId)
    {
        foreach (var (id, v) in _vdevs)
            if (ReferenceEquals(v.Device, idev)) { virtId = id; return Errno.OK; }
        virtId = 0;
        return Errno.ENOENT;
    }

    /// <summary>
    /// iommufd_viommu_report_event (driver.c): queue one event record on the vEVENTQ of <paramref name="type"/>;
    /// EOPNOTSUPP when user space allocated none. A full queue logs the lost-events header instead.
    /// </summary>
    public Errno ReportEvent(uint type, ReadOnlySpan<byte> eventData)
    {
        if (eventData.IsEmpty) return Errno.EINVAL;
        if (FindVeventq(type) is not { } q) return Errno.EOPNOTSUPP;
        q.Report(eventData);
        return Errno.OK;
    }

    internal override void Release()
    {
        Ops?.Destroy(this);
        Hwpt.Put();
        _vdevs.Clear();
    }
}

/// <summary>iommu_ops.hw_info of a driver that is not the VT-d one (IOMMU_GET_HW_INFO's data and type).</summary>
public interface IHwInfoDriver
{
    /// <summary><paramref name="type"/> in: the type asked for (DEFAULT: the driver's); out: the type of <paramref name="data"/>.</summary>
    Errno HwInfo(IommufdDevice idev, ref uint type, out byte[] data);
}
