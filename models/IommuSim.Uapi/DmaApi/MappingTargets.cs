using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.DmaApi;

/// <summary>Where a target's buffers and IOVAs come from, and the software overheads around its calls (ps).</summary>
public sealed record MappingWindow(
    ulong BufferBase,
    ulong BufferBytes,
    ulong IovaBase,
    ulong IovaBytes,
    long MapOverheadPs = 0,
    long UnmapOverheadPs = 0,
    long InvalidateOverheadPs = 0);

/// <summary>
/// Builds the run-time mapping target of a provisioned device, one factory per attach path, each over the
/// same driver, domain and iommufd objects that the ioctls use:
/// <list type="bullet">
/// <item><see cref="ForKernelDomain"/>: the host DMA API maps in its paging domain, a <see cref="VtdPagingDomain"/> or an
/// arm-smmu-v3 <see cref="Driver.ArmSmmuV3.ArmSmmuDomain"/> (iommu_map / iommu_unmap with the flush gathered;
/// cache_tag_flush_all or arm_smmu_tlb_inv_context for a lazy flush).</item>
/// <item><see cref="ForIoas"/>: a VFIO program maps each buffer with IOMMU_IOAS_MAP / IOAS_UNMAP (cdev) or
/// VFIO_IOMMU_MAP_DMA / UNMAP_DMA (legacy container, through the compat IOAS): IOAS areas, domain
/// tables and DMA stay in agreement.</item>
/// <item><see cref="ForGuestStage1"/>: nested: the guest edits its own stage-1 table; its invalidation
/// traps to the VMM, which forwards it with IOMMU_HWPT_INVALIDATE on the nested HWPT.</item>
/// <item><see cref="ForShadow"/>: the guest edits its stage-1 table and the VMM mirrors every change with
/// IOAS_MAP / IOAS_UNMAP on the shadow IOAS.</item>
/// </list>
/// </summary>
public static class MappingTargets
{
    /// <summary>Off and pass-through: dma_map returns the physical address.</summary>
    public static IMappingTarget Identity(ulong bufferBase, ulong bufferBytes) => new IdentityTarget(bufferBase, bufferBytes);

    /// <summary>The host kernel's DMA-API domain; buffers from host memory at <paramref name="window"/>.</summary>
    /// <remarks>VT-d: <paramref name="hint"/> says when unmaps set IH. arm-smmu-v3: a leaf-only TLBI is what the driver
    /// always sends (io-pgtable-arm frees no table on unmap), so the hint does not apply.</remarks>
    public static IMappingTarget ForKernelDomain(IommuPagingDomain domain, MappingWindow window, InvalidationHint hint = InvalidationHint.Never)
        => domain switch
        {
            VtdPagingDomain v => new KernelDomainTarget(v, window, hint),
            Driver.ArmSmmuV3.ArmSmmuDomain s => new SmmuKernelDomainTarget(s, window),
            _ => throw new NotSupportedException($"run-time mapping in a {domain.GetType().Name} is not modelled"),
        };

    /// <summary>
    /// A VFIO program's IOAS <paramref name="ioasId"/> in <paramref name="ictx"/> (legacy container:
    /// <paramref name="vfioContainer"/>, through VFIO_IOMMU_MAP_DMA). The buffer pool is mmap()ed in the
    /// program (<paramref name="bufferBytes"/>, 2 MiB-aligned); <paramref name="hwptId"/> is the paging HWPT
    /// the device is attached to (whose domain a lazy flush invalidates).
    /// </summary>
    public static IMappingTarget ForIoas(IommufdContext ictx, uint ioasId, uint hwptId, bool vfioContainer, ulong bufferBytes,
        ulong iovaBase, ulong iovaBytes, long ioctlPs)
    {
        var hwpt = ictx.Lookup(hwptId) as HwptPaging ?? throw new ArgumentException($"object {hwptId} is not a paging HWPT", nameof(hwptId));
        ulong va = ictx.Mm.Mmap(bufferBytes, writable: true);
        ulong pa = ictx.Mm.Translate(va) ?? throw new InvalidOperationException("the buffer pool has no backing");
        var window = new MappingWindow(pa, bufferBytes, iovaBase, iovaBytes, ioctlPs, ioctlPs);
        return new IoasTarget(ictx, ioasId, DomainFlusher.For(hwpt.PagingDomain, ictx.Kernel.Port), vfioContainer, va, window);
    }

    /// <summary>
    /// Nested: the guest's stage-1 table <paramref name="stage1"/> (buffers are guest-physical, from
    /// <paramref name="window"/>); invalidations go through IOMMU_HWPT_INVALIDATE of nested HWPT
    /// <paramref name="nestedHwptId"/>.
    /// </summary>
    public static IMappingTarget ForGuestStage1(IommufdContext ictx, uint nestedHwptId, PageTable stage1, MappingWindow window)
    {
        var hwpt = ictx.Lookup(nestedHwptId) as HwptNested ?? throw new ArgumentException($"object {nestedHwptId} is not a nested HWPT", nameof(nestedHwptId));
        return new GuestStage1Target(ictx, nestedHwptId, hwpt.NestedDomain!.DomainId, stage1, window);
    }

    /// <summary>
    /// Shadow: the guest's stage-1 table <paramref name="stage1"/> in <paramref name="vm"/>, mirrored by the
    /// VMM into shadow IOAS <paramref name="shadowIoasId"/> (attached through paging HWPT <paramref name="hwptId"/>).
    /// Buffers are the guest RAM from <paramref name="poolGpa"/>; the window's buffer base is its host-physical address.
    /// </summary>
    public static IMappingTarget ForShadow(IommufdContext ictx, uint shadowIoasId, uint hwptId, Vm.VirtualMachine vm, PageTable stage1,
        ulong poolGpa, ulong bufferBytes, ulong iovaBase, ulong iovaBytes, long mapOverheadPs, long invalidateOverheadPs)
    {
        var hwpt = ictx.Lookup(hwptId) as HwptPaging ?? throw new ArgumentException($"object {hwptId} is not a paging HWPT", nameof(hwptId));
        var window = new MappingWindow(vm.GpaToHpa(poolGpa), bufferBytes, iovaBase, iovaBytes, mapOverheadPs, 0, invalidateOverheadPs);
        // The shadow domain's flush is its driver's (VT-d or arm-smmu-v3), gathered through the neutral gather.
        return new ShadowTarget(ictx, shadowIoasId, DomainFlusher.For(hwpt.PagingDomain, ictx.Kernel.Port), vm, stage1, poolGpa, window);
    }
}

/// <summary>What every translating target shares: its window and costs.</summary>
public abstract class WindowedTarget(MappingWindow window) : IMappingTarget
{
    public MappingWindow Window { get; } = window;
    public bool IdentityMapped => false;
    public abstract ushort DomainId { get; }
    public ulong BufferBase => Window.BufferBase;
    public ulong BufferBytes => Window.BufferBytes;
    public ulong IovaBase => Window.IovaBase;
    public ulong IovaBytes => Window.IovaBytes;
    public long MapOverheadPs => Window.MapOverheadPs;
    public long UnmapOverheadPs => Window.UnmapOverheadPs;
    public long InvalidateOverheadPs => Window.InvalidateOverheadPs;
    public abstract IotlbGather CreateGather();
    public abstract void Map(ulong iova, ulong output, ulong bytes, Access access, IotlbGather flush);
    public abstract void Unmap(ulong iova, ulong bytes, IotlbGather? flush, List<ulong> freedTablePages);
    public abstract void PutTablePages(List<ulong> pages);

    /// <summary>Table pages a map frees are not gathered (a map's flush is not waited for): this stays empty.</summary>
    protected readonly List<ulong> NoFreed = [];
    public abstract void AddDomainInvalidation(IotlbGather into);

    /// <summary>Where the flush of a lazy unmap goes: gathered and dropped (the lazy flush covers the whole domain later).</summary>
    protected readonly List<InvalidationDescriptor> Dropped = [];

    /// <summary>The VT-d descriptor list of a gather this target created (<see cref="CreateGather"/>).</summary>
    protected static List<InvalidationDescriptor> Vtd(IotlbGather gather)
        => gather is VtdIotlbGather g ? g.Descriptors : throw new ArgumentException($"a VT-d target cannot gather into {gather.GetType().Name}", nameof(gather));

    /// <summary>The list a kernel-side unmap gathers its flush into.</summary>
    protected List<InvalidationDescriptor> Gather(IotlbGather? flush)
    {
        Dropped.Clear();
        return flush is null ? Dropped : Vtd(flush);
    }

    /// <summary>
    /// Replay rule for a traced unmap of a range this model never mapped (the traced kernel mapped it before
    /// tracing began): the call still flushes the range, as the traced kernel's iotlb_sync did.
    /// </summary>
    protected static void UntracedUnmapFlush(Driver.VtdPagingDomain domain, ulong iova, ulong bytes, bool leafOnly, List<InvalidationDescriptor> flush)
        => Driver.VtdInvalidation.AddRange(flush, domain, firstStage: false, iova, bytes, leafOnly);

    /// <summary>
    /// Replay rule for a traced unmap of part of a mapping (__iommu_unmap takes any page-aligned range): the IOAS
    /// areas are cut at the range's ends first, as VFIO type1 v1 unmap does (iopt_cut_iova). A per-buffer unmap
    /// covers whole areas and cuts nothing; a cut the IOAS refuses leaves the unmap to fail.
    /// </summary>
    protected static void CutAtEnds(Iopt.IoPagetable iopt, ulong iova, ulong bytes)
    {
        ReadOnlySpan<ulong> cuts = [iova, iova + bytes];
        iopt.CutIova(cuts);
    }

    /// <summary>Errno of an ioctl the target makes on its program's behalf: anything but OK is a model error.</summary>
    protected static void Check(Errno rc, string call, ulong iova, ulong bytes)
    {
        if (rc != Errno.OK) throw new InvalidOperationException($"{call} of [0x{iova:x}, +0x{bytes:x}) failed with {rc}");
    }
}
