using IommuSim.Hardware.Devices;

namespace IommuSim.Hardware.Observers;

/// <summary>A run-time DMA-API call on a driver CPU.</summary>
public enum DmaApiCall : byte { Map, Unmap }

/// <summary>
/// The parts of a DMA-API call, in the order a call goes through them. <c>Overhead</c> parts are
/// the path's software cost beyond the page-table work: an ioctl (VFIO program) or a VM exit plus
/// the VMM's ioctl (a trapped guest map or invalidation under nested/shadow).
/// </summary>
public enum DmaApiPhase : byte { MapWork, MapOverhead, UnmapWork, UnmapOverhead, InvalidationSubmit, InvalidationOverhead, InvalidationWait }

/// <summary>
/// Hooks on the software actors (driver CPUs running the DMA API, the page-fault handler), with
/// the same contract as <see cref="HardwareObserver"/>: no-ops by default, null when nobody listens,
/// no model state changed. Implemented by tracing; raised by the uAPI layer's run-time paths.
/// </summary>
public abstract class SoftwareObserver
{
    /// <summary>Driver CPU <paramref name="cpu"/> of <paramref name="device"/> spends
    /// [<paramref name="startPs"/>, <paramref name="endPs"/>) on one phase of a call (reported when scheduled).</summary>
    public virtual void OnDmaApiPhase(DmaEngine device, int cpu, DmaApiPhase phase, long startPs, long endPs) { }

    /// <summary>A call returned to the driver (now); it started at <paramref name="startPs"/>.</summary>
    public virtual void OnDmaApiCall(DmaEngine device, int cpu, DmaApiCall call, long startPs, ulong iova, int bytes) { }

    /// <summary>A lazy-mode flush of the IOVA flush queue was submitted (now): by the unmapping CPU when the queue filled, else by the flush timer.</summary>
    public virtual void OnFlush(DmaEngine device, int cpu, bool timer, int entries) { }

    /// <summary>The I/O page-fault handler served a page request from <paramref name="device"/>:
    /// it took the request at <paramref name="startPs"/> and answers now; <paramref name="deliveryPs"/>
    /// of that is the trip through the VMM (nested/shadow).</summary>
    public virtual void OnPageFaultHandled(DmaEngine device, ulong address, long startPs, long deliveryPs, bool success) { }
}
