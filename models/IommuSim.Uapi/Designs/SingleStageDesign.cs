using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vfio;
using static IommuSim.Uapi.Designs.ProvisionCalls;

namespace IommuSim.Uapi.Designs;

/// <summary>
/// <c>single-stage</c> (PGTT = second-stage table): per device, by its attach path, the host kernel's
/// DMA API (a paging domain per group, buffers from host memory), a VFIO cdev program (IOAS_MAP of
/// user memory, one IOAS per group) or a legacy VFIO container program (type1 MAP_DMA).
/// </summary>
public sealed class SingleStageDesign : TranslationDesign
{
    public override string Name => "single-stage";
    public override bool Translates => true;
    public override int RunTimeAddressBits(int stage1Levels, int stage2Levels) => 12 + 9 * stage2Levels;

    public override void Provision(ProvisionedSystem sys, ProvisionRequest req)
    {
        var byGroupKernel = new Dictionary<int, IommuPagingDomain>();
        var byGroupIommufd = new Dictionary<int, uint>();
        var byGroupLegacy = new Dictionary<int, (int Container, int Group)>();
        IommufdContext? ictx = null;
        foreach (var d in req.Devices)
        {
            var pd = NewDevice(sys, d);
            switch (d.AttachVia)
            {
                case "kernel":
                    AttachKernel(sys, req, d, pd, byGroupKernel);
                    break;
                case "iommufd":
                {
                    ictx ??= OpenIommufd(sys);
                    int group = pd.Spec.IommuGroup;
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
                    AttachContainer(sys, req, d, pd, byGroupLegacy);
                    break;
                default:
                    throw new ArgumentException($"{d.Rid}: attach via '{d.AttachVia}' (kernel, iommufd, vfio-container)");
            }
        }
    }

    /// <summary>The host DMA API: the group's default domain, buffers from host memory.</summary>
    private static void AttachKernel(ProvisionedSystem sys, ProvisionRequest req, DeviceProvision d, ProvisionedDevice pd, Dictionary<int, IommuPagingDomain> byGroup)
    {
        var kernel = sys.Kernel;
        int group = pd.Spec.IommuGroup;
        if (!byGroup.TryGetValue(group, out var domain))
            byGroup[group] = domain = kernel.Driver.AllocPagingDomain(false, false, req.Stage2.Levels, req.Stage2.PageSize);
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
    }

    /// <summary>Legacy VFIO: a container per group, VFIO_SET_IOMMU, then VFIO_IOMMU_MAP_DMA per region.</summary>
    private static void AttachContainer(ProvisionedSystem sys, ProvisionRequest req, DeviceProvision d, ProvisionedDevice pd, Dictionary<int, (int Container, int Group)> byGroup)
    {
        if (d.Pasid is not null) throw new ArgumentException($"{d.Rid}: the legacy VFIO container interface has no PASID attach");
        int group = pd.Spec.IommuGroup;
        if (!byGroup.TryGetValue(group, out var g))
        {
            int container = sys.Process.OpenContainer(out var cctx);
            Check(sys.Process.OpenGroup(group, out int gfd), "open group", d);
            Check(sys.Process.GroupSetContainer(gfd, container), "VFIO_GROUP_SET_CONTAINER", d);
            // Type1 v1 is the legacy way to get 4 KiB-only mappings (it turns large pages off).
            uint type = req.Stage2.PageSize == PageSize.Size4K ? VfioConst.VFIO_TYPE1_IOMMU : VfioConst.VFIO_TYPE1v2_IOMMU;
            Check(cctx.VfioSetIommu(type), "VFIO_SET_IOMMU", d);
            g = (container, gfd);
            byGroup[group] = g;
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
    }

    public override IMappingTarget MappingTarget(Platform platform, DmaEngine device, ProvisionedDevice pd, RunTimeCosts costs)
    {
        // The host kernel's DMA API maps in its own domain; a VFIO program maps each buffer
        // with IOAS_MAP / VFIO_IOMMU_MAP_DMA through its IOAS, one ioctl per call.
        if (pd.KernelDomain is IommuPagingDomain domain)
        {
            ulong pool = platform.Frames.AllocateContiguous(BufferPoolBytes, 2UL << 20);
            return MappingTargets.ForKernelDomain(domain, new MappingWindow(pool, BufferPoolBytes, DynamicIovaBase, DynamicIovaBytes),
                costs.Hint);
        }
        return MappingTargets.ForIoas(pd.Context!, pd.IoasId, pd.HwptId, device.Options.Attach.Via == "vfio-container", BufferPoolBytes,
            DynamicIovaBase, DynamicIovaBytes, costs.IoctlPs);
    }
}
