using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// How a target's page-table edits get their flush gathered, per IOMMU driver: while a scope is open
/// (<see cref="Begin"/> … <see cref="End"/>), the driver's iotlb_sync appends to the gather instead of
/// submitting and waiting, and the table pages the unmap frees are kept for the caller. The range and
/// domain-wide flushes are the driver's (VT-d cache_tag_flush_range / _all; arm-smmu-v3
/// arm_smmu_tlb_inv_range_domain / arm_smmu_tlb_inv_context). One per target, reused: nothing allocated per call.
/// </summary>
internal abstract class DomainFlusher
{
    /// <summary>Where a lazy unmap's flush goes: gathered and dropped (the lazy flush covers the whole domain later).</summary>
    protected bool Dropping;

    public abstract ushort DomainId { get; }
    public abstract IotlbGather CreateGather();
    /// <summary>Opens the scope: flushes go to <paramref name="gather"/> (null: dropped), freed table pages to <paramref name="freed"/>.</summary>
    public abstract void Begin(IotlbGather? gather, List<ulong> freed);
    public abstract void End();
    /// <summary>A range flush of a traced range this model never mapped (the traced kernel's iotlb_sync still ran).</summary>
    public abstract void AddRange(IotlbGather gather, ulong iova, ulong bytes, bool leafOnly);
    /// <summary>The domain-wide flush of a lazy flush queue.</summary>
    public abstract void AddAll(IotlbGather gather);
    /// <summary>iommu_put_pages_list after the flush completed (clears the list).</summary>
    public abstract void PutTablePages(List<ulong> pages);

    public static DomainFlusher For(IommuPagingDomain domain, IHardwarePort? port) => domain switch
    {
        VtdPagingDomain v => new VtdFlusher(v, port ?? v.Driver.Port),
        ArmSmmuDomain s => new SmmuFlusher(s),
        _ => throw new NotSupportedException($"run-time mapping through a {domain.GetType().Name} is not modelled"),
    };
}

/// <summary>VT-d: second-stage domain, invalidation descriptors.</summary>
internal sealed class VtdFlusher(VtdPagingDomain domain, IHardwarePort port) : DomainFlusher
{
    private readonly List<InvalidationDescriptor> _dropped = [];
    private VtdDriver.DeferredFlushes _scope;

    public override ushort DomainId => domain.DomainId;
    public override IotlbGather CreateGather() => new VtdIotlbGather(port);

    public override void Begin(IotlbGather? gather, List<ulong> freed)
    {
        _dropped.Clear();
        _scope = domain.Driver.DeferFlushes(gather is null ? _dropped : Descs(gather), freed);
    }

    public override void End() => _scope.Dispose();

    public override void AddRange(IotlbGather gather, ulong iova, ulong bytes, bool leafOnly)
        => VtdInvalidation.AddRange(Descs(gather), domain, firstStage: false, iova, bytes, leafOnly);

    public override void AddAll(IotlbGather gather) => VtdInvalidation.AddAll(Descs(gather), domain, firstStage: false);

    public override void PutTablePages(List<ulong> pages) => domain.Driver.PutTablePages(pages);

    private static List<InvalidationDescriptor> Descs(IotlbGather g)
        => g is VtdIotlbGather v ? v.Descriptors : throw new ArgumentException($"a VT-d domain cannot gather into {g.GetType().Name}", nameof(g));
}

/// <summary>
/// arm-smmu-v3: a stage-1 (ASID) or stage-2 (VMID) domain, SMMU commands. io-pgtable-arm frees no table page on
/// unmap (it keeps empty tables), so nothing is ever put on the freelist.
/// </summary>
internal sealed class SmmuFlusher(ArmSmmuDomain domain) : DomainFlusher
{
    private readonly List<SmmuCommand> _dropped = [];
    private ArmSmmuV3Driver.DeferredFlushes _scope;

    public override ushort DomainId => domain.DomainId;
    public override IotlbGather CreateGather() => new SmmuIotlbGather(domain.Driver.Port, domain.Vmid, domain.Asid);

    public override void Begin(IotlbGather? gather, List<ulong> freed)
    {
        _dropped.Clear();
        _scope = domain.Driver.DeferFlushes(gather is null ? _dropped : Cmds(gather));
    }

    public override void End() => _scope.Dispose();

    public override void AddRange(IotlbGather gather, ulong iova, ulong bytes, bool leafOnly)
        => domain.Driver.GatherInvalidateRange(domain, iova, bytes, Cmds(gather));

    public override void AddAll(IotlbGather gather) => domain.Driver.GatherInvalidateAll(domain, Cmds(gather));

    public override void PutTablePages(List<ulong> pages) => pages.Clear();

    private static List<SmmuCommand> Cmds(IotlbGather g)
        => g is SmmuIotlbGather s ? s.Commands : throw new ArgumentException($"an SMMUv3 domain cannot gather into {g.GetType().Name}", nameof(g));
}
