using System.Runtime.CompilerServices;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;

namespace IommuSim.Hardware.Pcie;

/// <summary>
/// The root complex: takes TLPs off the root ports (<see cref="RootPort"/>), hands them to the IOMMU
/// (holding them in the port's receive buffer while the IOMMU input queue is full — which withholds
/// flow-control credits and so stalls the device), releases posted writes in the port's order, sends
/// translated requests to memory and returns read data as completions of at most MPS, split only at
/// read-completion-boundary (RCB) addresses. Traversal costs
/// <c>rootComplexLatencyNs</c> each way. With the IOMMU off, addresses go to memory unchanged. The IOMMU is
/// whatever architecture the platform built (VT-d or SMMUv3), seen through <see cref="ITranslationAgent"/>.
/// </summary>
public sealed class RootComplex : IEventHandler, ITranslationSink, IResettable
{
    private const int KindArrive = 1;
    private const int KindMemoryDone = 2;
    private const int KindCompletionArrived = 3;

    private readonly Scheduler _sched;
    private readonly MemoryTimingModel _timing;
    private readonly ITranslationAgent? _iommu;
    private readonly long _latencyPs;
    private Tlp? _blockedHead, _blockedTail;

    public RootComplex(Scheduler sched, MemoryTimingModel timing, ITranslationAgent? iommu, PcieOptions options)
    {
        _sched = sched;
        _timing = timing;
        _iommu = iommu;
        _latencyPs = SimTime.FromNs(options.RootComplexLatencyNs);
        if (iommu is not null) iommu.Sink = this;
    }

    public bool IommuOnPath => _iommu is not null;
    /// <summary>One root port per device link, in the order devices were added.</summary>
    public IReadOnlyList<RootPort> Ports => _ports;
    private readonly List<RootPort> _ports = [];

    /// <summary>Adds the root port for a device's link.</summary>
    public RootPort AddPort(PcieLink link)
    {
        var port = new RootPort(link);
        _ports.Add(port);
        return port;
    }
    /// <summary>Hooks (tracing); null when nobody listens.</summary>
    public HardwareObserver? Observer { get; internal set; }
    public long Tlps { get; private set; }
    public long BlockedTlps { get; private set; }
    public long FaultedTlps { get; private set; }
    public long AtsCompletions { get; private set; }

    /// <summary>Called by a device right after putting a TLP on its link: the TLP reaches the root
    /// complex's translation stage at <paramref name="linkArrival"/> + traversal latency.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Deliver(Tlp tlp, long linkArrival) => _sched.ScheduleAt(linkArrival + _latencyPs, this, KindArrive, 0, tlp);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnEvent(int kind, long arg, object? payload)
    {
        var tlp = (Tlp)payload!;
        switch (kind)
        {
            case KindArrive: OnArrive(tlp); break;
            case KindMemoryDone: OnMemoryDone(tlp); break;
            default: tlp.Source.OnTlpDone(tlp); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void OnArrive(Tlp tlp)
    {
        Tlps++;
        Observer?.OnRootComplexArrival(tlp);
        if (tlp.IsPageRequest)
        {
            // PRI page request message: logged for software; the device waits for the page response.
            tlp.Source.Port.ReturnCredit(posted: true);
            _iommu?.RecordPageRequest(tlp);
            tlp.Source.OnTlpDone(tlp);
            return;
        }
        var port = tlp.Source.Port;
        bool ordered = tlp.IsWrite && !tlp.IsTranslationRequest && port.OrderedPostedWrites;
        if (ordered) port.AppendWrite(tlp);
        if (_iommu is null || tlp.Translated)
        {
            if (!tlp.Translated) tlp.PhysicalAddress = tlp.Address;
            port.ReturnCredit(tlp);
            if (ordered) Commit(tlp);
            else ToMemory(tlp);
            return;
        }
        if (_blockedHead is null && _iommu.TryAccept(tlp))
        {
            port.ReturnCredit(tlp);
            return;
        }
        BlockedTlps++;
        tlp.NextBlocked = null;
        if (_blockedTail is null) _blockedHead = _blockedTail = tlp;
        else { _blockedTail.NextBlocked = tlp; _blockedTail = tlp; }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnInputQueueSpace()
    {
        while (_blockedHead is not null)
        {
            var t = _blockedHead;
            if (!_iommu!.TryAccept(t)) return;
            _blockedHead = t.NextBlocked;
            if (_blockedHead is null) _blockedTail = null;
            t.NextBlocked = null;
            t.Source.Port.ReturnCredit(t);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnTranslated(Tlp tlp)
    {
        if (tlp.IsTranslationRequest)
        {
            // Translation completion: header + one 8-byte translation (R=W=0 when it failed).
            AtsCompletions++;
            long at = tlp.Source.Link.SendDownstream(_sched.Now + _latencyPs, 8);
            Observer?.OnCompletionSent(tlp, _sched.Now + _latencyPs, at);
            _sched.ScheduleAt(at, this, KindCompletionArrived, 0, tlp);
            return;
        }
        if (tlp.IsWrite && tlp.Source.Port.OrderedPostedWrites)
        {
            Commit(tlp);
            return;
        }
        if (tlp.Faulted)
        {
            FaultedTlps++;
            // A faulted write is dropped; a faulted read gets an Unsupported Request completion.
            if (tlp.IsWrite) tlp.Source.OnTlpDone(tlp);
            else
            {
                long at = tlp.Source.Link.SendDownstream(_sched.Now + _latencyPs, 0);
                Observer?.OnCompletionSent(tlp, _sched.Now + _latencyPs, at);
                _sched.ScheduleAt(at, this, KindCompletionArrived, 0, tlp);
            }
            return;
        }
        ToMemory(tlp);
    }

    /// <summary>
    /// A posted write is translated (or faulted): it goes to memory once every earlier write of its
    /// root port has, so a translation miss holds back the writes behind it.
    /// </summary>
    private void Commit(Tlp tlp)
    {
        var port = tlp.Source.Port;
        if (!port.MarkWriteReady(tlp)) { OrderedWaits++; return; }
        while (port.TryTakeReadyWrite(out var head))
        {
            if (head.Faulted)
            {
                FaultedTlps++;
                head.Source.OnTlpDone(head); // dropped
            }
            else ToMemory(head);
        }
    }

    /// <summary>Writes that were translated but had to wait for an earlier write (PCIe ordering).</summary>
    public long OrderedWaits { get; private set; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ToMemory(Tlp tlp)
    {
        long done = _timing.Access(_sched.Now, Math.Max(tlp.Bytes, 1), tlp.IsWrite);
        Observer?.OnMemoryAccess(tlp, done);
        _sched.ScheduleAt(done, this, KindMemoryDone, 0, tlp);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void OnMemoryDone(Tlp tlp)
    {
        if (tlp.IsWrite)
        {
            tlp.Source.OnTlpDone(tlp);
            return;
        }
        var link = tlp.Source.Link;
        long start = _sched.Now + _latencyPs, arrival = start;
        ulong addr = tlp.PhysicalAddress;
        int left = tlp.Bytes;
        while (left > 0)
        {
            int chunk = CompletionBytes(addr, left, link.Options.MaxPayloadBytes, link.Options.ReadCompletionBoundary);
            arrival = link.SendDownstream(start, chunk);
            addr += (ulong)chunk;
            left -= chunk;
        }
        Observer?.OnCompletionSent(tlp, start, arrival);
        _sched.ScheduleAt(arrival, this, KindCompletionArrived, 0, tlp);
    }

    /// <summary>
    /// Size of the next completion for <paramref name="left"/> bytes of read data at
    /// <paramref name="addr"/>: as few completions as the rules allow (PCIe Base Spec §2.3.1.1):
    /// at most MPS each, and every completion but the last ends on an RCB-aligned address. So a
    /// read that fits in MPS returns in one completion, and an aligned one in ⌈size/MPS⌉
    /// (pcie-model's count).
    /// </summary>
    public static int CompletionBytes(ulong addr, int left, int mps, int rcb)
    {
        if (left <= mps) return left;
        ulong end = (addr + (ulong)mps) / (ulong)rcb * (ulong)rcb;
        return end > addr ? (int)(end - addr) : Math.Min(left, rcb - (int)(addr % (ulong)rcb));
    }

    public void Reset() => Tlps = BlockedTlps = FaultedTlps = AtsCompletions = OrderedWaits = 0;
}
