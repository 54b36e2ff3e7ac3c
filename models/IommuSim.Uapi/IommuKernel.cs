using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Memory;

namespace IommuSim.Uapi;

/// <summary>
/// The host kernel of the simulated machine as far as DMA remapping goes: the IOMMU driver (VT-d or
/// arm-smmu-v3, by the platform's architecture), the PCI
/// devices and their iommu groups, who owns each group's DMA (one iommufd context at a time), and
/// the iopf path that routes page requests to fault queues. Processes open iommufd contexts on it.
/// </summary>
public sealed class IommuKernel
{
    private readonly Dictionary<int, IommufdContext> _dmaOwner = [];
    private int _nextFd = 1000;

    public IommuKernel(IHardwarePort port, PlatformSpec? spec = null)
    {
        Port = port;
        Spec = spec ?? new PlatformSpec();
        // The driver that probes is the one for the IOMMU the platform has (iommu.architecture).
        Driver = port is PlatformPort { Platform.Smmu: not null } pp
            ? new Driver.ArmSmmuV3.ArmSmmuV3Driver(new PlatformSmmuPort(pp.Platform), Spec)
            : new VtdDriver(port, Spec);
        ViommuDriver = ViommuOpsOf(Driver);
        Iopf = IopfOf(Driver, port);
    }

    /// <summary>The driver's fault-queue side: arm-smmu-v3 reads its PRI and event queues itself; intel-iommu's is the page request queue.</summary>
    private static DmaApi.IIopfPort IopfOf(IIommuDriver driver, IHardwarePort port) => driver as DmaApi.IIopfPort ?? new DmaApi.VtdIopfPort(port);

    /// <summary>The vIOMMU ops of a driver: arm-smmu-v3 has them (with the Tegra241 CMDQV when the SMMU has one);
    /// intel-iommu has none.</summary>
    private static IViommuDriver? ViommuOpsOf(IIommuDriver driver)
    {
        if (driver is not Driver.ArmSmmuV3.ArmSmmuV3Driver smmu) return null;
        if (smmu.Port.Smmu.Options.Tegra241Cmdqv) smmu.Cmdqv = new Driver.ArmSmmuV3.Tegra241Cmdqv(smmu);
        return new Driver.ArmSmmuV3.ArmVsmmuDriver(smmu);
    }

    /// <summary>A kernel whose IOMMU driver is <paramref name="driver"/> (the platform's architecture picks it).</summary>
    public IommuKernel(IHardwarePort port, IIommuDriver driver)
    {
        Port = port;
        Spec = driver.Spec;
        Driver = driver;
        ViommuDriver = ViommuOpsOf(driver);
        Iopf = IopfOf(driver, port);
    }

    public IHardwarePort Port { get; }
    /// <summary>The IOMMU driver's I/O page-fault side (fault interrupt, hardware queue, page_response).</summary>
    public DmaApi.IIopfPort Iopf { get; }
    public PlatformSpec Spec { get; }
    /// <summary>The IOMMU driver (iommu_ops): VT-d or arm-smmu-v3.</summary>
    public IIommuDriver Driver { get; }

    /// <summary>The VT-d driver when the platform is VT-d (VT-d-only paths: nested VTD_S1 domains), else null.</summary>
    public VtdDriver? Vtd => Driver as VtdDriver;

    /// <summary>The vIOMMU ops of the IOMMU driver (iommu_ops.get_viommu_size/viommu_init); null for a driver without
    /// them, such as intel-iommu, whose VIOMMU_ALLOC is then EOPNOTSUPP.</summary>
    public IViommuDriver? ViommuDriver { get; set; }

    public IReadOnlyList<DeviceSpec> Devices => Spec.Devices;

    public DeviceSpec? FindDevice(RequesterId rid) => Spec.Devices.FirstOrDefault(d => d.Rid == rid);

    public DeviceSpec? FindDevice(string bdf) => RequesterId.TryParse(bdf, out var rid) ? FindDevice(rid) : null;

    public IReadOnlyList<DeviceSpec> GroupMembers(int group) => Spec.Devices.Where(d => d.IommuGroup == group).ToList();

    public bool GroupExists(int group) => Spec.Devices.Any(d => d.IommuGroup == group);

    /// <summary>
    /// The run-time DMA API of this kernel, on the same hardware port as the driver: its targets
    /// (<see cref="DmaApi.MappingTargets"/>) map through this kernel's domains and IOASes.
    /// </summary>
    public DmaApi.KernelDmaApi CreateDmaApi(DmaApi.DmaApiCosts costs) => new(Port, costs);

    /// <summary>The run-time I/O page-fault handler of this kernel (host demand paging), on the driver's port.</summary>
    public DmaApi.IopfHandler CreateIopfHandler(long handlingPs) => new(Iopf, handlingPs);

    /// <summary>A new process address space (user memory backed by the hardware frame allocator).</summary>
    public UserAddressSpace NewAddressSpace() => new(Port.Frames);

    /// <summary>open("/dev/iommu") by a process with address space <paramref name="mm"/>.</summary>
    public IommufdContext OpenIommufd(UserAddressSpace mm) => new(this, mm);

    internal int AllocateFd() => _nextFd++;

    /// <summary>iommu_device_claim_dma_owner_shared for a whole group: EBUSY when another context owns it.</summary>
    internal Errno ClaimDmaOwner(int group, IommufdContext ictx)
    {
        if (_dmaOwner.TryGetValue(group, out var owner)) return ReferenceEquals(owner, ictx) ? Errno.OK : Errno.EBUSY;
        _dmaOwner[group] = ictx;
        return Errno.OK;
    }

    internal void ReleaseDmaOwner(int group, IommufdContext ictx)
    {
        if (_dmaOwner.TryGetValue(group, out var owner) && ReferenceEquals(owner, ictx)) _dmaOwner.Remove(group);
    }

    /// <summary>Page requests handed to a user fault queue (the device waits for the user's response).</summary>
    public long PageRequestsToUser { get; private set; }

    /// <summary>
    /// Routes page requests as they arrive (iopf). Not done by default: a run that models the
    /// host's own demand paging installs a different page-request handler on the same queue.
    /// </summary>
    public void ListenForPageRequests() => Iopf.FaultArrived += HandlePageRequests;

    /// <summary>
    /// The iopf path: drains the hardware page-request queue and hands each request to the fault
    /// queue of the HWPT its (device, PASID) is attached to; requests with no fault queue are
    /// answered INVALID right away, as iopf does without a handler.
    /// </summary>
    public void HandlePageRequests()
    {
        while (Iopf.TryReadFault(out var pr))
        {
            var spec = FindDevice(new RequesterId(pr.RequesterId));
            uint pasid = pr.HasPasid ? pr.Pasid : IommufdContext.NoPasid;
            FaultQueue? queue = null;
            IommufdDevice? idev = null;
            if (spec is not null && _dmaOwner.TryGetValue(spec.IommuGroup, out var ictx))
            {
                idev = ictx.BoundDevice(spec);
                if (idev is not null && idev.Group.Get(pasid) is { } attach) queue = attach.Hwpt.Fault;
            }
            if (queue is not null && idev is not null)
            {
                queue.Deliver(idev, pr);
                PageRequestsToUser++;
            }
            else if (spec is not null && pr.LastInGroup) Driver.PageResponse(spec, pasid, pr.PageGroupIndex, PageResponseCode.Invalid);
        }
    }
}
