using IommuSim.Engine.Scheduling;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The host's I/O page-fault handler for demand-paged devices (SVA-style): takes page requests
/// from the IOMMU's page-request queue, spends <c>handlingPs</c> resolving each (allocating and
/// mapping the 4 KiB page into the device's domain), then answers with a page group response
/// through the invalidation queue, which resumes the device. Requests outside the device's
/// demand-paged windows are answered INVALID, which fails the DMA.
/// </summary>
public sealed class IopfHandler : IEventHandler, Engine.Stats.IResettable
{
    private readonly Platform _p;
    private readonly long _handlingPs;
    private readonly Dictionary<ushort, (IMappingTarget Target, List<(ulong Start, ulong End)> Windows)> _devices = [];
    private readonly Queue<PageRequest> _pending = new();
    private ulong _cursor;
    private bool _busy;

    public IopfHandler(Platform platform, long handlingPs)
    {
        _p = platform;
        _handlingPs = handlingPs;
        platform.Iommu.PageRequestArrived += OnPageRequest;
    }

    public long Handled { get; private set; }
    public long Rejected { get; private set; }

    public void Reset() => Handled = Rejected = 0;

    public void Register(DmaEngine device, IMappingTarget target, IEnumerable<(ulong Iova, ulong Bytes)> windows)
        => _devices[device.RequesterId.Value] = (target, windows.Select(w => (w.Iova, w.Iova + w.Bytes)).ToList());

    private void OnPageRequest()
    {
        while (_p.Iommu.Faults.TryReadPageRequest(out var pr)) _pending.Enqueue(pr);
        if (!_busy && _pending.Count > 0) StartNext();
    }

    private void StartNext()
    {
        _busy = true;
        _p.Scheduler.ScheduleIn(_handlingPs, this);
    }

    public void OnEvent(int kind, long arg, object? payload)
    {
        var pr = _pending.Dequeue();
        var code = PageResponseCode.Invalid;
        ulong page = pr.Address & ~0xFFFUL;
        if (_devices.TryGetValue(pr.RequesterId, out var d) && d.Windows.Any(w => page >= w.Start && page < w.End))
        {
            if (_cursor + 0x1000 > d.Target.BufferBytes) _cursor = 0;
            try
            {
                d.Target.Map(page, d.Target.BufferBase + _cursor, 0x1000, Access.ReadWrite);
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
        _p.Iommu.Invalidation.Submit(new InvalidationDescriptor(InvalidationType.PageGroupResponse,
            RequesterId: pr.RequesterId, Pasid: pr.Pasid, PageGroupIndex: pr.PageGroupIndex, ResponseCode: code));
        _busy = false;
        if (_pending.Count > 0) StartNext();
    }
}
