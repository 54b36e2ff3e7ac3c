using IommuSim.Hardware;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Designs;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
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
    IReadOnlyList<DeviceProvision> Devices,
    bool ViommuHwQueue = false);

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

    /// <summary>Nested on SMMUv3: the guest's SMMU structures and the vIOMMU (and hardware queue) they go through.</summary>
    public Designs.SmmuNestedGuest? SmmuGuest { get; internal set; }
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
/// VMM makes, so that the hardware tables are exactly what those paths produce. The calls of each
/// design are on its object (<see cref="Designs.TranslationDesign.Provision"/>: off, passthrough,
/// single-stage, nested, shadow); this sets up the kernel model and the user process they share.
/// Stage-2 page size: 4K turns huge pages off on the IOAS (type1 v1 for vfio-container), 2M limits the
/// domains to 2M leaves, 1G allows 1G leaves and backs memory with 1 GiB pages.
/// </summary>
public static class SystemProvisioner
{
    public static ProvisionedSystem Provision(Platform platform, ProvisionRequest request, PlatformSpec? template = null)
    {
        if (request.Stage2.Levels is < 3 or > 5) throw new ArgumentException($"stage2 levels {request.Stage2.Levels}: must be 3, 4 or 5");
        var design = TranslationDesigns.Get(request.Design);
        var spec = PlatformPort.SpecFor(platform, (template ?? new PlatformSpec()) with
        {
            SecondStageLevels = request.Stage2.Levels,
            Supports1G = request.Stage2.PageSize == PageSize.Size1G,
        });
        var kernel = new IommuKernel(new PlatformPort(platform), spec);
        var sys = new ProvisionedSystem(kernel, new UserProcess(kernel));
        design.Provision(sys, request);
        return sys;
    }
}
