using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// struct iommu_iotlb_gather + iommu_iotlb_sync, without the command format: an unmap (or a lazy flush)
/// appends the invalidations the IOMMU needs to a gather owned by the mapping target (VT-d: invalidation
/// descriptors, <see cref="VtdIotlbGather"/>; SMMUv3: TLBI_* / ATC_INV commands, <see cref="SmmuIotlbGather"/>),
/// and the run-time DMA API submits it with <see cref="Submit"/>: the IOMMU's wait (VT-d wait descriptor,
/// SMMUv3 CMD_SYNC) is appended and the waiter is called when it completes in simulated time.
/// A gather is created once per driver CPU and reused, so a call allocates nothing.
/// </summary>
public abstract class IotlbGather
{
    /// <summary>Invalidation commands gathered (the wait that <see cref="Submit"/> adds is not counted).</summary>
    public abstract int Count { get; }

    /// <summary>Drops what was gathered (a new unmap starts).</summary>
    public abstract void Clear();

    /// <summary>
    /// Queues the gathered commands followed by the IOMMU's wait and returns at once; <paramref name="waiter"/>
    /// (if any) is called with <paramref name="cookie"/> when the wait completes. The gather is cleared: its
    /// commands are in the hardware's queue. Safe to call from inside an event.
    /// </summary>
    public abstract void Submit(IInvalidationWaiter? waiter, long cookie);

    /// <summary>
    /// Results bookkeeping for lazy invalidation (<c>security.staleTranslationsUsed</c>): [iova, iova+bytes) of the
    /// translation tagged <paramref name="tag"/> (VT-d domain id, SMMUv3 ASID/VMID) was unmapped and may still be
    /// cached until a later invalidation covers it.
    /// </summary>
    public abstract void NoteUnmappedPendingInvalidation(ushort tag, ulong iova, ulong bytes);

    /// <summary>A target that never invalidates (identity): nothing is ever gathered.</summary>
    public static IotlbGather None { get; } = new NoneGather();

    private sealed class NoneGather : IotlbGather
    {
        public override int Count => 0;
        public override void Clear() { }
        public override void Submit(IInvalidationWaiter? waiter, long cookie)
            => throw new InvalidOperationException("an identity mapping has nothing to invalidate");
        public override void NoteUnmappedPendingInvalidation(ushort tag, ulong iova, ulong bytes) { }
    }
}
