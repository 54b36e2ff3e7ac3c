using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.Hardware;

/// <summary>The outcome of one DMA issued by a device and completed by the simulated hardware.</summary>
public readonly record struct DmaOutcome(bool Faulted, FaultReason Reason, ulong PhysicalAddress, long LatencyPs, int WalkReads);

/// <summary>
/// What the uAPI layer needs from the simulated machine: the memory it writes tables into, the
/// IOMMU's table root and fault log, a queued-invalidation interface whose waits complete in
/// simulated time, and a way to issue a DMA (for scripts and tests). Kept this narrow so the
/// kernel model does not depend on how the hardware schedules its work.
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

    /// <summary>
    /// Queues <paramref name="descriptors"/> followed by an invalidation-wait descriptor and runs
    /// the simulation until the wait has completed: when this returns, no cached translation
    /// covered by the descriptors can be used any more.
    /// </summary>
    void SubmitAndWait(ReadOnlySpan<InvalidationDescriptor> descriptors);

    /// <summary>
    /// Queues descriptors without waiting (a page group response: the device resumes when the
    /// hardware processes it). Safe to call from inside a hardware event.
    /// </summary>
    void Post(ReadOnlySpan<InvalidationDescriptor> descriptors);

    /// <summary>Raised by the IOMMU when a page request lands in its page-request queue (<see cref="Faults"/>).</summary>
    event Action PageRequestArrived;

    /// <summary>One DMA from device <paramref name="rid"/>, run to completion.</summary>
    DmaOutcome ExecuteDma(RequesterId rid, uint? pasid, ulong iova, int bytes, Access op);

    /// <summary>Lets <paramref name="picoseconds"/> of simulated time pass.</summary>
    void Advance(long picoseconds);
}
