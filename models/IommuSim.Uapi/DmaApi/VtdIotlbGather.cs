using System.Runtime.InteropServices;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The VT-d gather: invalidation descriptors built by the driver (cache_tag_flush_range / cache_tag_flush_all),
/// submitted through the queued-invalidation interface followed by an invalidation-wait descriptor
/// (qi_submit_sync's wait, here asynchronous: <see cref="IHardwarePort.Submit"/>).
/// </summary>
public sealed class VtdIotlbGather(IHardwarePort port) : IotlbGather
{
    /// <summary>Where the driver appends (<see cref="Driver.VtdDriver.DeferFlushes"/>).</summary>
    public List<InvalidationDescriptor> Descriptors { get; } = [];

    /// <summary>The ticket of the last submission's wait descriptor.</summary>
    public long LastTicket { get; private set; }

    public override int Count => Descriptors.Count;

    public override void Clear() => Descriptors.Clear();

    public override void Submit(IInvalidationWaiter? waiter, long cookie)
    {
        LastTicket = port.Submit(CollectionsMarshal.AsSpan(Descriptors), waiter, cookie);
        Descriptors.Clear();
    }

    public override void NoteUnmappedPendingInvalidation(ushort tag, ulong iova, ulong bytes)
        => port.NoteUnmappedPendingInvalidation(tag, iova, bytes);
}
