using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.Hardware;

/// <summary>The outcome of one DMA issued by a device and completed by the simulated hardware.</summary>
public readonly record struct DmaOutcome(bool Faulted, FaultReason Reason, ulong PhysicalAddress, long LatencyPs, int WalkReads);

/// <summary>
/// Told when an invalidation batch submitted with <see cref="IHardwarePort.Submit"/> has completed (its wait
/// descriptor's status write): the driver CPU that spins on it may go on. Long-lived objects implement it, so a
/// submission allocates nothing.
/// </summary>
public interface IInvalidationWaiter
{
    /// <param name="cookie">What the submitter passed with the batch (which of its waits this is).</param>
    void OnInvalidationWaitDone(long cookie);
}

/// <summary>
/// What the uAPI layer needs from the simulated machine: the memory it writes tables into, the
/// IOMMU's table root and fault log, a queued-invalidation interface, the page-request queue, and
/// the engine's scheduler for the kernel's own timed work (driver CPUs, flush timers). Kept this
/// narrow so that the kernel model reaches the hardware in one way only. Invalidation is
/// asynchronous (<see cref="Submit"/>, completion in simulated time), which event handlers use;
/// <see cref="SubmitAndWait"/> is the synchronous helper on top for ioctls made outside the
/// event loop (scripts, provisioning).
/// </summary>
public interface IHardwarePort
{
    PhysicalMemory Memory { get; }
    FrameAllocator Frames { get; }
    TranslationTables Tables { get; }
    FaultLog Faults { get; }
    PageRequestQueue PageRequests { get; }

    /// <summary>Simulated time now, in ps.</summary>
    long NowPs { get; }

    /// <summary>The engine's scheduler: for the kernel model's own events (never to run it from inside an event).</summary>
    Scheduler Scheduler { get; }

    /// <summary>
    /// Queues <paramref name="descriptors"/> followed by an invalidation-wait descriptor and returns at
    /// once; when the wait completes in simulated time, <paramref name="waiter"/> (if any) is called with
    /// <paramref name="cookie"/>. Returns the wait descriptor's ticket. Safe to call from inside an event.
    /// </summary>
    long Submit(ReadOnlySpan<InvalidationDescriptor> descriptors, IInvalidationWaiter? waiter, long cookie);

    /// <summary>
    /// <see cref="Submit"/>, then runs the simulation until the wait has completed: when this returns,
    /// no cached translation covered by the descriptors can be used any more. Never from inside an event.
    /// </summary>
    void SubmitAndWait(ReadOnlySpan<InvalidationDescriptor> descriptors);

    /// <summary>
    /// Queues descriptors without a wait (a page group response: the device resumes when the
    /// hardware processes it). Safe to call from inside a hardware event.
    /// </summary>
    void Post(ReadOnlySpan<InvalidationDescriptor> descriptors);

    /// <summary>
    /// Results bookkeeping for lazy invalidation: [iova, iova+bytes) of domain <paramref name="did"/> was
    /// unmapped and may still be cached until a later invalidation covers it (hits on it count as stale).
    /// </summary>
    void NoteUnmappedPendingInvalidation(ushort did, ulong iova, ulong bytes);

    /// <summary>Raised by the IOMMU when a page request lands in its page-request queue (<see cref="Faults"/>).</summary>
    event Action PageRequestArrived;

    /// <summary>One DMA from device <paramref name="rid"/>, run to completion.</summary>
    DmaOutcome ExecuteDma(RequesterId rid, uint? pasid, ulong iova, int bytes, Access op);

    /// <summary>Lets <paramref name="picoseconds"/> of simulated time pass.</summary>
    void Advance(long picoseconds);
}
