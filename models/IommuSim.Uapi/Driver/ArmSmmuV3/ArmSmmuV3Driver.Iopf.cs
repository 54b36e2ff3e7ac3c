using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// The arm-smmu-v3 driver's I/O page-fault path (<see cref="IIopfPort"/>), two sources as in Linux:
/// <list type="bullet">
/// <item>PRI (arm_smmu_priq_thread → arm_smmu_handle_ppr): a PCIe Page Request of an ATS/PRI master, read from the
/// PRI queue, becomes an iopf fault with grpid = PRG index and the PASID when SSV; the answer is CMD_PRI_RESP
/// (Success / Invalid = Deny / Failure) for the PRG, posted without CMD_SYNC. That is the arm-smmu-v3 SVA/PRI patch
/// series (iommu.smmu.driverPri = iopf), so the same IOPF handler serves VT-d and SMMUv3; mainline Linux
/// (driverPri = deny, the default) answers every PRI request DENY in arm_smmu_handle_ppr.</item>
/// <item>Stall (arm_smmu_evtq_thread → arm_smmu_handle_evt): a translation, access or permission fault of a
/// stall-enabled master (CD.S set, STE.S1STALLD clear: arm_smmu_make_s1_cd / arm_smmu_make_cdtable_ste) holds the
/// transaction and records an event with STALL and STAG; it becomes an iopf fault with grpid = STAG and LAST_PAGE,
/// answered by arm_smmu_page_response with CMD_RESUME (RETRY on Success, ABORT otherwise).</item>
/// </list>
/// PRI queue overflow: arm_smmu_priq_thread acknowledges it (queue_sync_cons_ovf) and counts it; the hardware has
/// already answered each lost last request itself (<c>SmmuUnit.RecordPageRequest</c>).
/// </summary>
public sealed partial class ArmSmmuV3Driver : IIopfPort
{
    private readonly Queue<PageRequest> _stallFaults = new();
    private readonly Queue<SmmuCommand> _postBacklog = new();
    private readonly SmmuCommand[] _post = new SmmuCommand[1];
    private PostPoller? _poller;
    private Action? _faultArrived;
    private bool _faultIrqWired;

    Scheduler IIopfPort.Scheduler => Port.Scheduler;

    /// <summary>PRI queue overflows the priq thread acknowledged ("PRIQ overflow detected -- requests lost").</summary>
    public long PriqOverflows { get; private set; }

    /// <summary>PRI page requests answered DENY by the driver itself (mainline arm_smmu_handle_ppr; iommu.smmu.driverPri = deny).</summary>
    public long PriRequestsDenied { get; private set; }

    /// <summary>Stalled transactions reported to the iopf path (arm_smmu_handle_evt with EVTQ_1_STALL).</summary>
    public long StallFaultsReported { get; private set; }

    /// <summary>The PRIQ and EVTQ interrupts: raised when either queue gets a record.</summary>
    public event Action FaultArrived
    {
        add
        {
            if (!_faultIrqWired)
            {
                // request_threaded_irq for the PRIQ and EVTQ lines, once.
                Port.Smmu.PriQueue.RecordWritten += RaiseFault;
                Port.Smmu.EventQueue.RecordWritten += RaiseFault;
                _faultIrqWired = true;
            }
            _faultArrived += value;
        }
        remove => _faultArrived -= value;
    }

    private void RaiseFault() => _faultArrived?.Invoke();

    /// <summary>
    /// arm_smmu_priq_thread, then arm_smmu_evtq_thread: PRI page requests first; once the PRI queue is drained an
    /// overflow is acknowledged; then the event queue is drained (<see cref="HandleEvents"/>), its stall records
    /// becoming faults in arrival order.
    /// </summary>
    public bool TryReadFault(out PageRequest fault)
    {
        var priq = Port.Smmu.PriQueue;
        bool deny = Port.Smmu.Options.DriverPri == "deny";
        while (deny && priq.TryRead(out var denied))
        {
            // Mainline arm_smmu_handle_ppr: "unexpected PRI request received"; the group's last request gets DENY.
            PriRequestsDenied++;
            if (denied.Last)
                PostResponse(new SmmuCommand
                {
                    Opcode = SmmuOpcode.PriResp, Sid = denied.Sid, SubstreamValid = denied.SubstreamValid, Ssid = denied.Ssid, Tag = (ushort)denied.Prgi, Action = 0,
                });
        }
        if (priq.TryRead(out var r))
        {
            var access = (r.Read ? Access.Read : 0) | (r.Write ? Access.Write : 0);
            fault = new PageRequest(Port.NowPs, (ushort)r.Sid, r.SubstreamValid ? r.Ssid : 0, r.SubstreamValid, r.Address,
                access == 0 ? Access.Read : access, r.Prgi, r.Last);
            return true;
        }
        if (priq.AcknowledgeOverflow()) PriqOverflows++;
        if (_stallFaults.Count == 0 && Port.Smmu.EventQueue.Pending > 0) HandleEvents();
        return _stallFaults.TryDequeue(out fault);
    }

    /// <summary>
    /// arm_smmu_handle_evt for a record with STALL set: F_TRANSLATION, F_ACCESS and F_PERMISSION of a known,
    /// stall-enabled master are reported (grpid = STAG, LAST_PAGE, the PASID when SSV, READ from RnW else WRITE);
    /// false leaves the record to the host's event log.
    /// </summary>
    private bool ReportStall(in SmmuEvent e)
    {
        if (!e.Stall || e.Type is not (SmmuEventType.Translation or SmmuEventType.AccessFlag or SmmuEventType.Permission)) return false;
        if (!_masters.TryGetValue(e.Sid, out var m) || !m.StallEnabled) return false;
        _stallFaults.Enqueue(new PageRequest(Port.NowPs, (ushort)e.Sid, e.SubstreamValid ? e.Ssid : 0, e.SubstreamValid,
            e.InputAddress & ~0xFFFUL, e.Write ? Access.Write : Access.Read, e.Stag, LastInGroup: true));
        StallFaultsReported++;
        return true;
    }

    /// <summary>iommu_ops.page_response for a fault read through <see cref="TryReadFault"/>.</summary>
    public void PageResponse(in PageRequest fault, PageResponseCode code)
    {
        if (_masters.TryGetValue(fault.RequesterId, out var m))
            PageResponse(m.Spec, fault.HasPasid ? fault.Pasid : 0, fault.PageGroupIndex, code);
    }

    /// <summary>
    /// arm_smmu_page_response: a stall-enabled master's group is a stalled transaction, resumed with CMD_RESUME
    /// (STAG = grpid; RETRY on Success, ABORT on Invalid or Failure); a PRI master's group gets CMD_PRI_RESP
    /// (PRGI = grpid, the SSID when the request had one; Success, Deny for Invalid, Failure). Posted: no CMD_SYNC,
    /// "it doesn't do anything for RESUME or PRI_RESP".
    /// </summary>
    public void PageResponse(DeviceSpec dev, uint pasid, int groupIndex, PageResponseCode code)
    {
        if (_masters.TryGetValue(dev.Rid.Value, out var m) && m.StallEnabled)
        {
            Resume(m.Sid, (ushort)groupIndex, retry: code == PageResponseCode.Success);
            return;
        }
        byte resp = code switch { PageResponseCode.Success => 2, PageResponseCode.Failure => 1, _ => 0 };
        PostResponse(new SmmuCommand
        {
            Opcode = SmmuOpcode.PriResp, Sid = dev.Rid.Value, SubstreamValid = pasid != 0, Ssid = pasid, Tag = (ushort)groupIndex, Action = resp,
        });
    }

    /// <summary>CMD_RESUME for a stalled transaction: retry (translate again) or abort.</summary>
    public void Resume(uint sid, ushort stag, bool retry)
        => PostResponse(new SmmuCommand { Opcode = SmmuOpcode.Resume, Sid = sid, Tag = stag, Action = retry ? (byte)1 : (byte)0 });

    /// <summary>Responses posted while the command queue was full, waiting for space.</summary>
    public int PendingResponses => _postBacklog.Count;

    /// <summary>
    /// arm_smmu_cmdq_issue_cmd without sync: the command goes in at PROD now if there is room; otherwise (the queue is
    /// full of other CPUs' invalidations) the caller, which may be inside a hardware event, cannot spin, so the command
    /// waits in order and is written as CONS frees a slot, polled once per consumed command (assumption, as the
    /// DMA API's gather polls).
    /// </summary>
    private void PostResponse(in SmmuCommand c)
    {
        DescriptorCount++;
        if (_postBacklog.Count == 0)
        {
            _post[0] = c;
            if (Port.TrySubmit(_post, null)) return;
        }
        _postBacklog.Enqueue(c);
        if (_postBacklog.Count == 1) SchedulePoll();
    }

    private void SchedulePoll()
    {
        var smmu = Port.Smmu;
        _poller ??= new PostPoller(this);
        Port.Scheduler.ScheduleAt(smmu.Clock.EdgeAfter(Port.NowPs, Math.Max(1, smmu.Options.Queues.CyclesPerCommand)), _poller);
    }

    private void DrainBacklog()
    {
        while (_postBacklog.Count > 0)
        {
            _post[0] = _postBacklog.Peek();
            if (!Port.TrySubmit(_post, null)) break;
            _postBacklog.Dequeue();
        }
        if (_postBacklog.Count > 0) SchedulePoll();
    }

    private sealed class PostPoller(ArmSmmuV3Driver driver) : IEventHandler
    {
        public void OnEvent(int kind, long arg, object? payload) => driver.DrainBacklog();
    }
}
