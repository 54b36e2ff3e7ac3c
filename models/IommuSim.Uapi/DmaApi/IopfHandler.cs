using IommuSim.Engine.Scheduling;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The I/O page-fault path for demand-paged devices (SVA-style): takes page requests from the
/// IOMMU's page-request queue one at a time, spends <c>handlingPs</c> resolving each (allocating and
/// mapping the 4 KiB page into the device's domain), then answers with a page group response
/// through the invalidation queue, which resumes the device. Requests outside the device's
/// demand-paged windows are answered INVALID, which fails the DMA.
/// <para>For a device assigned to a VM with nested translation the fault belongs to the guest, whose
/// stage-1 table lacks the page: the host's iommufd queues it on the HWPT's FAULT object, the VMM reads
/// it and injects it into the guest's vIOMMU, the guest's handler maps the page in its stage-1 table,
/// and its page response traps back to the VMM, which writes it to the FAULT fd. That path adds the
/// device's <c>deliveryPs</c> (two ioctls and two VM exits) to every request. With a shadowing vIOMMU
/// the guest's new mapping also traps so that the VMM can copy it into the shadow table: one more of
/// each.</para>
/// <para>The page is mapped through the device's mapping target (<see cref="MappingTargets"/>: the kernel's
/// domain, the guest's table, the VMM's shadow IOAS). Requests are read from, and responses built and posted by,
/// the IOMMU driver's <see cref="IIopfPort"/> — the only way this handler reaches the hardware: on VT-d the page
/// request queue and a page group response descriptor, on SMMUv3 the PRI queue (CMD_PRI_RESP) or a stall record in
/// the event queue (CMD_RESUME).</para>
/// </summary>
public sealed class IopfHandler : IEventHandler, Engine.Stats.IResettable
{
    private readonly IIopfPort _port;
    private readonly long _handlingPs;
    private readonly Dictionary<ushort, (DmaEngine Device, IMappingTarget Target, IotlbGather MapFlush, List<(ulong Start, ulong End)> Windows, long DeliveryPs)> _devices = [];
    private readonly Queue<PageRequest> _pending = new();
    private ulong _cursor;
    private bool _busy;
    private long _startPs;

    public IopfHandler(IIopfPort port, long handlingPs)
    {
        _port = port;
        _handlingPs = handlingPs;
        port.FaultArrived += OnPageRequest;
    }

    /// <summary>Over VT-d's page request queue through <paramref name="port"/>.</summary>
    public IopfHandler(IHardwarePort port, long handlingPs) : this(new VtdIopfPort(port), handlingPs) { }

    /// <summary>Over a VT-d platform through a port of its own (the same hardware the kernel model's port reaches).</summary>
    public IopfHandler(Platform platform, long handlingPs) : this(new PlatformPort(platform), handlingPs) { }

    public long Handled { get; private set; }
    public long Rejected { get; private set; }
    /// <summary>Hooks (tracing); null when nobody listens.</summary>
    public SoftwareObserver? Observer { get; set; }

    /// <summary>From a page request's arrival in the hardware queue to its response being posted (queueing behind
    /// earlier faults, delivery and handling included).</summary>
    public Engine.Stats.LatencyHistogram ResponseLatency { get; } = new("iopf.response");

    public void Reset()
    {
        Handled = Rejected = 0;
        ResponseLatency.Reset();
    }

    /// <summary>Where the pages of <paramref name="device"/>'s faults are mapped (null: not registered).</summary>
    public IMappingTarget? TargetOf(DmaEngine device) => _devices.TryGetValue(device.RequesterId.Value, out var d) ? d.Target : null;

    /// <param name="deliveryPs">Time a request spends getting to its handler and the response coming back besides
    /// the handling itself: 0 for the host's own handler, the VMM round trip for a guest's.</param>
    public void Register(DmaEngine device, IMappingTarget target, IEnumerable<(ulong Iova, ulong Bytes)> windows, long deliveryPs = 0)
        => _devices[device.RequesterId.Value] = (device, target, target.CreateGather(), windows.Select(w => (w.Iova, w.Iova + w.Bytes)).ToList(), deliveryPs);

    private void OnPageRequest()
    {
        while (_port.TryReadFault(out var pr)) _pending.Enqueue(pr);
        if (!_busy && _pending.Count > 0) StartNext();
    }

    private void StartNext()
    {
        _busy = true;
        _startPs = _port.Scheduler.Now;
        long delivery = _devices.TryGetValue(_pending.Peek().RequesterId, out var d) ? d.DeliveryPs : 0;
        _port.Scheduler.ScheduleIn(_handlingPs + delivery, this);
    }

    public void OnEvent(int kind, long arg, object? payload)
    {
        var pr = _pending.Dequeue();
        var code = PageResponseCode.Invalid;
        ulong page = pr.Address & ~0xFFFUL;
        bool known = _devices.TryGetValue(pr.RequesterId, out var d);
        if (known && InWindow(d.Windows, page))
        {
            if (_cursor + 0x1000 > d.Target.BufferBytes) _cursor = 0;
            try
            {
                d.MapFlush.Clear();
                d.Target.Map(page, d.Target.BufferBase + _cursor, 0x1000, Access.ReadWrite, d.MapFlush);
                // A map needs no flush unless a large leaf replaced a table; nobody waits for it.
                if (d.MapFlush.Count > 0) d.MapFlush.Submit(null, 0);
                _cursor += 0x1000;
            }
            catch (InvalidOperationException)
            {
                // Already mapped by an earlier request of the same page: just answer success.
            }
            code = PageResponseCode.Success;
            Handled++;
        }
        else Rejected++;
        if (Observer is { } o && known)
            o.OnPageFaultHandled(d.Device, pr.Address, _startPs, d.DeliveryPs, code == PageResponseCode.Success);
        ResponseLatency.Record(_port.Scheduler.Now - pr.TimePs);
        _port.PageResponse(pr, code);
        _busy = false;
        if (_pending.Count > 0) StartNext();
    }

    private static bool InWindow(List<(ulong Start, ulong End)> windows, ulong page)
    {
        foreach (var (start, end) in windows)
            if (page >= start && page < end) return true;
        return false;
    }
}
