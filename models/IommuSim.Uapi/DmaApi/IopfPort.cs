using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The IOMMU driver's half of the I/O page-fault path, the part io-pgfault.c does not own: the fault interrupt
/// (the hardware queue has a new record), reading one recoverable fault from the hardware queue as the kernel's
/// struct iopf_fault / iommu_fault_page_request (what the driver hands to iommu_report_device_fault), and
/// iommu_ops.page_response (building the architecture's response and posting it). intel-iommu reads the page
/// request queue and answers with a page group response descriptor (<see cref="VtdIopfPort"/>); arm-smmu-v3 reads
/// the PRI queue and the event queue's stall records and answers with CMD_PRI_RESP or CMD_RESUME
/// (<c>Driver/ArmSmmuV3/ArmSmmuV3Driver.Iopf.cs</c>). <see cref="IopfHandler"/> and the iommufd fault path use
/// only this, so they run unchanged on either architecture.
/// </summary>
public interface IIopfPort
{
    /// <summary>The engine's scheduler: the handler's own timed work.</summary>
    Scheduler Scheduler { get; }

    /// <summary>The fault interrupt: the hardware wrote a record software should read (raised inside hardware events).</summary>
    event Action FaultArrived;

    /// <summary>
    /// The next recoverable fault the hardware queued, as iommu_fault_page_request: requester ID (StreamID), PASID
    /// (SubstreamID) when valid, page address, access, group index (PRG index, or the stall tag STAG for a stalled
    /// transaction, as arm_smmu_handle_evt fills grpid) and the last-in-group flag. False when nothing is pending.
    /// Records that are not recoverable faults are consumed and accounted by the driver on the way.
    /// </summary>
    bool TryReadFault(out PageRequest fault);

    /// <summary>iommu_ops.page_response for the group <paramref name="fault"/> closed: posted, never waited for.</summary>
    void PageResponse(in PageRequest fault, PageResponseCode code);
}

/// <summary>
/// intel-iommu's side (prq.c: intel_prq_report reads the page request queue; intel_iommu_page_response writes a
/// page group response descriptor to the invalidation queue), through the VT-d <see cref="IHardwarePort"/>.
/// </summary>
public sealed class VtdIopfPort(IHardwarePort port) : IIopfPort
{
    private readonly InvalidationDescriptor[] _response = new InvalidationDescriptor[1];

    public Scheduler Scheduler => port.Scheduler;

    public event Action FaultArrived
    {
        add => port.PageRequestArrived += value;
        remove => port.PageRequestArrived -= value;
    }

    public bool TryReadFault(out PageRequest fault) => port.PageRequests.TryRead(out fault);

    public void PageResponse(in PageRequest fault, PageResponseCode code)
    {
        _response[0] = VtdInvalidation.PageGroupResponse(fault.RequesterId, fault.Pasid, fault.PageGroupIndex, code);
        port.Post(_response);
    }
}
