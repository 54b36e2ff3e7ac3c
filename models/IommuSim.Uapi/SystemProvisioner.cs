using IommuSim.Hardware;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vfio;
using IommuSim.Uapi.Vm;

namespace IommuSim.Uapi;

/// <summary>Levels and leaf size of one translation stage (config translation.stage1/stage2).</summary>
public sealed record StageSpec(int Levels = 4, PageSize PageSize = PageSize.Size4K);

/// <summary>An IOVA range a device's driver maps before the workload runs.</summary>
public sealed record DmaRegion(ulong Iova, ulong Bytes);

/// <summary>A VM (config vms[]).</summary>
public sealed record VmSpec(string Name, ulong MemoryBytes);

/// <summary>
/// One device to provision (config devices[]): how it is attached (<c>kernel</c>, <c>iommufd</c>,
/// <c>vfio-container</c>), to which VM (nested, shadow), with which PASID, and its DMA regions.
/// </summary>
public sealed record DeviceProvision(RequesterId Rid, string AttachVia, IReadOnlyList<DmaRegion> Regions, string? Vm = null, uint? Pasid = null);

/// <summary>What <see cref="SystemProvisioner.Provision"/> builds (config translation + vms + devices).</summary>
public sealed record ProvisionRequest(
    string Design,
    StageSpec Stage1,
    StageSpec Stage2,
    IReadOnlyList<VmSpec> Vms,
    IReadOnlyList<DeviceProvision> Devices);

/// <summary>Where one region ended up: its IOVA, size, and the host-physical address of its first byte.</summary>
public sealed record ProvisionedRegion(ulong Iova, ulong Bytes, ulong HostPhysical);

/// <summary>What a device was given, with the handles needed to change its mappings later.</summary>
public sealed class ProvisionedDevice
{
    internal ProvisionedDevice(DeviceSpec spec, uint? pasid) { Spec = spec; Pasid = pasid; }

    public DeviceSpec Spec { get; }
    public uint? Pasid { get; }
    public List<ProvisionedRegion> Regions { get; } = [];

    /// <summary>iommufd paths: the context, IOAS and attached HWPT ids (legacy: the compat IOAS; ids are not visible to a legacy program but exist).</summary>
    public IommufdContext? Context { get; internal set; }
    public uint IoasId { get; internal set; }
    public uint HwptId { get; internal set; }

    /// <summary>Kernel DMA-API path: the device's default domain.</summary>
    public IommuPagingDomain? KernelDomain { get; internal set; }

    /// <summary>
    /// The table that translates this device's IOVAs first, and the domain id its translations are
    /// cached under: the host second-stage table (kernel, iommufd, vfio-container, shadow) or the
    /// guest's first-stage table in VM memory (nested; its output is a GPA). Null for off and
    /// passthrough. What a run-time DMA-API model edits.
    /// </summary>
    public PageTable? Table { get; internal set; }
    public ushort DomainId { get; internal set; }

    /// <summary>Nested and shadow: the guest's stage-1 table (root GPA) and its VM.</summary>
    public VirtualMachine? Vm { get; internal set; }
    public ulong GuestPgtbl { get; internal set; }
}

/// <summary>The provisioned system: the kernel model over the platform and the process that made the calls.</summary>
public sealed class ProvisionedSystem
{
    internal ProvisionedSystem(IommuKernel kernel, UserProcess process) { Kernel = kernel; Process = process; }

    public IommuKernel Kernel { get; }

    /// <summary>The user process (VMM / VFIO program) whose fds and memory back the iommufd and legacy paths.</summary>
    public UserProcess Process { get; }

    public Dictionary<RequesterId, ProvisionedDevice> Devices { get; } = [];
    public Dictionary<string, VirtualMachine> Vms { get; } = [];
}

/// <summary>
/// Builds a translation design on a platform by making the calls a host kernel, a VFIO program or a
/// VMM makes, so that the hardware tables are exactly what those paths produce:
/// <list type="bullet">
/// <item><c>off</c>: nothing (the IOMMU is not on the path; DMA addresses are physical).</item>
/// <item><c>passthrough</c>: the kernel attaches the identity domain (PGTT pass-through).</item>
/// <item><c>single-stage</c>: kernel DMA API (a paging domain per group, buffers from host memory),
/// iommufd (IOAS_MAP of user memory, VFIO cdev attach) or vfio-container (type1 MAP_DMA).</item>
/// <item><c>nested</c>: per VM, guest RAM mapped GPA = IOVA into a NEST_PARENT HWPT; per device a guest
/// stage-1 table in VM memory wrapped in a VT-d nested HWPT.</item>
/// <item><c>shadow</c>: the guest builds its stage-1 table, the VMM shadows each guest mapping with an
/// IOAS_MAP of the backing guest RAM at the guest IOVA (one single-stage table).</item>
/// </list>
/// Stage-2 page size: 4K turns huge pages off on the IOAS (type1 v1 for vfio-container), 2M limits the
/// domains to 2M leaves, 1G allows 1G leaves and backs memory with 1 GiB pages.
/// </summary>
public static class SystemProvisioner
{
    /// <summary>Guest buffers are placed from 1 MiB up; guest page tables come from the top of RAM down.</summary>
    private const ulong GuestBufferBase = 0x10_0000;

    public static ProvisionedSystem Provision(Platform platform, ProvisionRequest request, PlatformSpec? template = null)
    {
        if (request.Stage2.Levels is < 3 or > 5) throw new ArgumentException($"stage2 levels {request.Stage2.Levels}: must be 3, 4 or 5");
        var spec = PlatformPort.SpecFor(platform, (template ?? new PlatformSpec()) with
        {
            SecondStageLevels = request.Stage2.Levels,
            Supports1G = request.Stage2.PageSize == PageSize.Size1G,
        });
        var kernel = new IommuKernel(new PlatformPort(platform), spec);
        var process = new UserProcess(kernel);
        var sys = new ProvisionedSystem(kernel, process);
        var design = request.Design;
        switch (design)
        {
            case "off":
                foreach (var d in request.Devices)
                {
                    var pd = NewDevice(sys, d);
                    foreach (var r in d.Regions) pd.Regions.Add(new ProvisionedRegion(r.Iova, r.Bytes, r.Iova));
                }
                break;
            case "passthrough":
                foreach (var d in request.Devices)
                {
                    var pd = NewDevice(sys, d);
                    Check(kernel.Driver.SetDevicePasid(pd.Spec, d.Pasid ?? 0, kernel.Driver.Identity, null), "attach identity domain", d);
                    foreach (var r in d.Regions) pd.Regions.Add(new ProvisionedRegion(r.Iova, r.Bytes, r.Iova));
                }
                break;
            case "single-stage":
                SingleStage(sys, request);
                break;
            case "nested":
            case "shadow":
                Virtualized(sys, request, nested: design == "nested");
                break;
            default:
                throw new ArgumentException($"unknown design '{design}' (off, passthrough, single-stage, nested, shadow)");
        }
        return sys;
    }

    private static ProvisionedDevice NewDevice(ProvisionedSystem sys, DeviceProvision d)
    {
        var spec = sys.Kernel.FindDevice(d.Rid) ?? throw new ArgumentException($"no device at {d.Rid} on the platform");
        var pd = new ProvisionedDevice(spec, d.Pasid);
        sys.Devices.Add(d.Rid, pd);
        return pd;
    }

    private static void Check(Errno rc, string what, DeviceProvision d)
    {
        if (rc != Errno.OK) throw new InvalidOperationException($"{d.Rid}: {what} failed with {rc}");
    }

    private static ulong MemoryAlignment(StageSpec s) => s.PageSize == PageSize.Size1G ? 1UL << 30 : 2UL << 20;

    // ---- single stage -----------------------------------------------------------------------------

    private static void SingleStage(ProvisionedSystem sys, ProvisionRequest req)
    {
        var kernel = sys.Kernel;
        var byGroupKernel = new Dictionary<int, IommuPagingDomain>();
        var byGroupIommufd = new Dictionary<int, uint>();
        var byGroupLegacy = new Dictionary<int, (int Container, int Group)>();
        IommufdContext? ictx = null;
        foreach (var d in req.Devices)
        {
            var pd = NewDevice(sys, d);
            int group = pd.Spec.IommuGroup;
            switch (d.AttachVia)
            {
                case "kernel":
                {
                    // The host DMA API: the group's default domain, buffers from host memory.
                    if (!byGroupKernel.TryGetValue(group, out var domain))
                        byGroupKernel[group] = domain = kernel.Driver.AllocPagingDomain(false, false, req.Stage2.Levels, req.Stage2.PageSize);
                    foreach (var member in kernel.GroupMembers(group))
                        if (!domain.Attachments.Contains((member, d.Pasid ?? 0)))
                            Check(kernel.Driver.SetDevicePasid(member, d.Pasid ?? 0, domain, null), "attach DMA domain", d);
                    foreach (var r in d.Regions)
                    {
                        ulong pa = kernel.Port.Frames.AllocateContiguous(r.Bytes, Math.Max(4096UL, Math.Min(req.Stage2.PageSize.Bytes(), 1UL << 30)));
                        domain.Map(r.Iova, pa, r.Bytes, Access.ReadWrite, allowLargePages: true);
                        pd.Regions.Add(new ProvisionedRegion(r.Iova, r.Bytes, pa));
                    }
                    pd.KernelDomain = domain;
                    pd.Table = (domain as VtdPagingDomain)?.Table;
                    pd.DomainId = domain.DomainId;
                    break;
                }
                case "iommufd":
                {
                    ictx ??= OpenIommufd(sys);
                    if (!byGroupIommufd.TryGetValue(group, out uint ioas))
                        byGroupIommufd[group] = ioas = NewIoas(ictx, req.Stage2, d);
                    foreach (var r in d.Regions)
                    {
                        ulong va = sys.Process.Mm.Mmap(r.Bytes, true, MemoryAlignment(req.Stage2));
                        MapFixed(ictx, ioas, va, r.Iova, r.Bytes, d);
                        pd.Regions.Add(new ProvisionedRegion(r.Iova, r.Bytes, sys.Process.Mm.Translate(va)!.Value));
                    }
                    AttachCdev(sys, ictx, pd, d, ioas, usePasidHwpt: d.Pasid is not null);
                    pd.IoasId = ioas;
                    break;
                }
                case "vfio-container":
                {
                    if (d.Pasid is not null) throw new ArgumentException($"{d.Rid}: the legacy VFIO container interface has no PASID attach");
                    if (!byGroupLegacy.TryGetValue(group, out var g))
                    {
                        int container = sys.Process.OpenContainer(out var cctx);
                        Check(sys.Process.OpenGroup(group, out int gfd), "open group", d);
                        Check(sys.Process.GroupSetContainer(gfd, container), "VFIO_GROUP_SET_CONTAINER", d);
                        // Type1 v1 is the legacy way to get 4 KiB-only mappings (it turns large pages off).
                        uint type = req.Stage2.PageSize == PageSize.Size4K ? VfioConst.VFIO_TYPE1_IOMMU : VfioConst.VFIO_TYPE1v2_IOMMU;
                        Check(cctx.VfioSetIommu(type), "VFIO_SET_IOMMU", d);
                        g = (container, gfd);
                        byGroupLegacy[group] = g;
                    }
                    var ctx = sys.Process.Iommufd(g.Container)!;
                    Check(sys.Process.GroupGetDeviceFd(g.Group, pd.Spec.Rid.ToString(), out int devFd), "VFIO_GROUP_GET_DEVICE_FD", d);
                    foreach (var r in d.Regions)
                    {
                        ulong va = sys.Process.Mm.Mmap(r.Bytes, true, MemoryAlignment(req.Stage2));
                        Check(ctx.VfioMapDma(new VfioIommuType1DmaMap
                        {
                            vaddr = va, iova = r.Iova, size = r.Bytes,
                            flags = VfioConst.VFIO_DMA_MAP_FLAG_READ | VfioConst.VFIO_DMA_MAP_FLAG_WRITE,
                        }), $"VFIO_IOMMU_MAP_DMA 0x{r.Iova:x}", d);
                        pd.Regions.Add(new ProvisionedRegion(r.Iova, r.Bytes, sys.Process.Mm.Translate(va)!.Value));
                    }
                    var idev = sys.Process.DeviceFile(devFd)!.Idev!;
                    pd.Context = ctx;
                    pd.IoasId = ctx.CompatIoas!.Id;
                    var hwpt = (HwptPaging)idev.Group.Get(IommufdContext.NoPasid)!.Hwpt;
                    pd.HwptId = hwpt.Id;
                    pd.Table = (hwpt.PagingDomain as VtdPagingDomain)?.Table;
                    pd.DomainId = hwpt.PagingDomain.DomainId;
                    break;
                }
                default:
                    throw new ArgumentException($"{d.Rid}: attach via '{d.AttachVia}' (kernel, iommufd, vfio-container)");
            }
        }
    }

    /// <summary>IOAS_ALLOC, and OPTION HUGE_PAGES=0 when the stage is to use 4 KiB leaves only.</summary>
    private static uint NewIoas(IommufdContext ictx, StageSpec stage, DeviceProvision d)
    {
        var alloc = new IommuIoasAlloc();
        Check(ictx.IoasAlloc(alloc), "IOAS_ALLOC", d);
        if (stage.PageSize == PageSize.Size4K)
            Check(ictx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.SET, object_id = alloc.out_ioas_id, val64 = 0 }), "OPTION HUGE_PAGES=0", d);
        return alloc.out_ioas_id;
    }

    /// <summary>IOAS_MAP at a fixed IOVA, readable and writeable.</summary>
    private static void MapFixed(IommufdContext ictx, uint ioas, ulong va, ulong iova, ulong bytes, DeviceProvision d)
        => Check(ictx.IoasMap(new IommuIoasMap
        {
            ioas_id = ioas, user_va = va, length = bytes, iova = iova,
            flags = IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE,
        }), $"IOAS_MAP 0x{iova:x}", d);

    private static IommufdContext OpenIommufd(ProvisionedSystem sys)
    {
        sys.Process.OpenIommufd(out var ictx);
        return ictx;
    }

    /// <summary>VFIO cdev: bind, then attach the RID (to the IOAS: auto HWPT) or a PASID (to a PASID-compatible HWPT).</summary>
    private static void AttachCdev(ProvisionedSystem sys, IommufdContext ictx, ProvisionedDevice pd, DeviceProvision d, uint ptId, bool usePasidHwpt)
    {
        Check(sys.Process.OpenDeviceCdev(pd.Spec, out int fd), "open VFIO cdev", d);
        var file = sys.Process.DeviceFile(fd)!;
        var bind = new VfioDeviceBindIommufd();
        Check(file.BindIommufd(ictx, bind), "VFIO_DEVICE_BIND_IOMMUFD", d);
        uint pt = ptId;
        if (usePasidHwpt && ictx.Lookup(ptId) is Ioas)
        {
            var alloc = new IommuHwptAlloc { dev_id = bind.out_devid, pt_id = ptId, flags = IommuHwptAllocFlags.PASID };
            Check(ictx.HwptAlloc(alloc), "IOMMU_HWPT_ALLOC(PASID)", d);
            pt = alloc.out_hwpt_id;
        }
        var attach = new VfioDeviceAttachIommufdPt { pt_id = pt };
        if (d.Pasid is uint p)
        {
            attach.flags = VfioConst.VFIO_DEVICE_ATTACH_PASID;
            attach.pasid = p;
        }
        Check(file.AttachPt(attach), "VFIO_DEVICE_ATTACH_IOMMUFD_PT", d);
        pd.Context = ictx;
        pd.HwptId = attach.pt_id;
        var hwpt = (HwptPaging)ictx.Lookup(attach.pt_id)!;
        pd.Table = (hwpt.PagingDomain as VtdPagingDomain)?.Table;
        pd.DomainId = hwpt.PagingDomain.DomainId;
    }

    // ---- nested and shadow ---------------------------------------------------------------------------

    private sealed class VmState(VirtualMachine vm)
    {
        public VirtualMachine Vm { get; } = vm;
        public uint Ioas { get; set; }
        public uint NestParent { get; set; }
        public ulong NextGuestBuffer { get; set; } = GuestBufferBase;
    }

    private static void Virtualized(ProvisionedSystem sys, ProvisionRequest req, bool nested)
    {
        if (nested && req.Stage1.Levels is not (4 or 5)) throw new ArgumentException($"stage1 levels {req.Stage1.Levels}: a VT-d stage-1 table has 4 or 5 levels");
        var ictx = OpenIommufd(sys);
        var vms = new Dictionary<string, VmState>();
        foreach (var d in req.Devices)
        {
            if (d.AttachVia != "iommufd")
                throw new ArgumentException($"{d.Rid}: a VM's device is assigned through the VFIO cdev (attach.via = iommufd), not '{d.AttachVia}'");
            var pd = NewDevice(sys, d);
            string vmName = d.Vm ?? (req.Vms.Count > 0 ? req.Vms[0].Name : throw new ArgumentException($"{d.Rid}: design {req.Design} needs a VM"));
            var vmSpec = req.Vms.FirstOrDefault(v => v.Name == vmName) ?? throw new ArgumentException($"{d.Rid}: unknown VM '{vmName}'");
            if (!vms.TryGetValue(vmName, out var vs))
            {
                vs = new VmState(sys.Process.CreateVm(vmSpec.MemoryBytes, MemoryAlignment(req.Stage2)));
                vms[vmName] = vs;
                sys.Vms[vmName] = vs.Vm;
                if (nested) vs.Ioas = MapGuestRam(ictx, vs.Vm, req.Stage2, d);
            }
            pd.Vm = vs.Vm;

            // The guest driver builds its stage-1 table and maps its buffers (GVA/IOVA → GPA).
            pd.GuestPgtbl = vs.Vm.AllocPageTable(nested ? req.Stage1.Levels : Math.Max(4, req.Stage1.Levels));
            var s1 = vs.Vm.PageTable(pd.GuestPgtbl)!;
            var guestMaps = new List<(ulong Iova, ulong Gpa, ulong Bytes)>();
            foreach (var r in d.Regions)
            {
                ulong align = Math.Max(4096UL, req.Stage1.PageSize.Bytes());
                ulong gpa = (vs.NextGuestBuffer + align - 1) & ~(align - 1);
                if (gpa < IommufdContext.MsiWindowStart && gpa + r.Bytes > IommufdContext.MsiWindowStart)
                    gpa = (IommufdContext.MsiWindowLast + 1 + align - 1) & ~(align - 1);
                if (gpa + r.Bytes > vs.Vm.MemoryBytes - (64UL << 20))
                    throw new ArgumentException($"{d.Rid}: VM '{vmName}' has too little memory for its DMA regions");
                vs.NextGuestBuffer = gpa + r.Bytes;
                s1.Map(r.Iova, gpa, r.Bytes, Access.ReadWrite, req.Stage1.PageSize);
                guestMaps.Add((r.Iova, gpa, r.Bytes));
                pd.Regions.Add(new ProvisionedRegion(r.Iova, r.Bytes, vs.Vm.GpaToHpa(gpa)));
            }

            if (nested)
            {
                Check(sys.Process.OpenDeviceCdev(pd.Spec, out int fd), "open VFIO cdev", d);
                var file = sys.Process.DeviceFile(fd)!;
                var bind = new VfioDeviceBindIommufd();
                Check(file.BindIommufd(ictx, bind), "VFIO_DEVICE_BIND_IOMMUFD", d);
                if (vs.NestParent == 0)
                {
                    var parent = new IommuHwptAlloc { dev_id = bind.out_devid, pt_id = vs.Ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
                    Check(ictx.HwptAlloc(parent), "IOMMU_HWPT_ALLOC(NEST_PARENT)", d);
                    vs.NestParent = parent.out_hwpt_id;
                }
                var alloc = new IommuHwptAlloc
                {
                    dev_id = bind.out_devid, pt_id = vs.NestParent, data_type = IommuHwptDataType.VTD_S1,
                    flags = d.Pasid is null ? 0 : IommuHwptAllocFlags.PASID,
                    data = new IommuHwptVtdS1 { pgtbl_addr = pd.GuestPgtbl, addr_width = req.Stage1.Levels == 5 ? 57u : 48u },
                };
                Check(ictx.HwptAlloc(alloc), "IOMMU_HWPT_ALLOC(VTD_S1)", d);
                var attach = new VfioDeviceAttachIommufdPt { pt_id = alloc.out_hwpt_id };
                if (d.Pasid is uint p) { attach.flags = VfioConst.VFIO_DEVICE_ATTACH_PASID; attach.pasid = p; }
                Check(file.AttachPt(attach), "VFIO_DEVICE_ATTACH_IOMMUFD_PT", d);
                pd.Context = ictx;
                pd.IoasId = vs.Ioas;
                pd.HwptId = attach.pt_id;
                pd.Table = s1;
                pd.DomainId = ((HwptNested)ictx.Lookup(attach.pt_id)!).NestedDomain!.DomainId;
            }
            else
            {
                // Shadowing: the VMM traps the guest's map and mirrors it, IOVA → the guest RAM behind the GPA.
                uint shadow = NewIoas(ictx, req.Stage2, d);
                foreach (var (iova, gpa, bytes) in guestMaps) MapFixed(ictx, shadow, vs.Vm.RamUserVa + gpa, iova, bytes, d);
                AttachCdev(sys, ictx, pd, d, shadow, usePasidHwpt: d.Pasid is not null);
                pd.IoasId = shadow;
            }
        }
    }

    /// <summary>The VMM maps guest RAM GPA = IOVA, leaving out the MSI window as a real VMM leaves its hole.</summary>
    private static uint MapGuestRam(IommufdContext ictx, VirtualMachine vm, StageSpec stage2, DeviceProvision d)
    {
        uint ioas = NewIoas(ictx, stage2, d);
        var pieces = new List<(ulong Gpa, ulong Bytes)>();
        if (vm.MemoryBytes <= IommufdContext.MsiWindowStart) pieces.Add((0, vm.MemoryBytes));
        else
        {
            pieces.Add((0, IommufdContext.MsiWindowStart));
            ulong above = IommufdContext.MsiWindowLast + 1;
            if (vm.MemoryBytes > above) pieces.Add((above, vm.MemoryBytes - above));
        }
        foreach (var (gpa, bytes) in pieces) MapFixed(ictx, ioas, vm.RamUserVa + gpa, gpa, bytes, d);
        return ioas;
    }
}
