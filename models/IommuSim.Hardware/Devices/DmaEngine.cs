using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Devices;

/// <summary>
/// A generic PCIe DMA engine: accepts requests up to <c>maxOutstanding</c>, splits each into
/// memory-request TLPs (MPS for writes, MRRS for reads, never across a 4 KiB boundary) and sends
/// them over its link as flow-control credits allow. A request completes when its last write is
/// accepted by memory or its last read completion arrives. Requests and TLPs are pooled.
/// </summary>
public sealed class DmaEngine : ITlpSource
{
    private readonly Scheduler _sched;
    private readonly RootComplex _rc;
    private readonly Stack<DmaRequest> _requestPool = new();
    private readonly Stack<Tlp> _tlpPool = new();
    private readonly Queue<DmaRequest> _sendQueue = new();
    private int _postedCredits, _nonPostedCredits;

    public DmaEngine(DeviceOptions options, PcieLink link, RootComplex rc, Scheduler sched)
    {
        Options = options;
        Name = options.Name;
        RequesterId = options.RequesterId;
        MaxOutstanding = options.MaxOutstanding;
        Link = link;
        _rc = rc;
        _sched = sched;
        _postedCredits = link.Options.PostedCredits;
        _nonPostedCredits = link.Options.NonPostedCredits;
    }

    public DeviceOptions Options { get; }
    public string Name { get; }
    public RequesterId RequesterId { get; }
    public int MaxOutstanding { get; }
    public PcieLink Link { get; }
    public DeviceStats Stats { get; } = new();
    public IDmaClient? Client { get; set; }
    public int Outstanding { get; private set; }
    public bool CanIssue => Outstanding < MaxOutstanding;

    /// <summary>A request object from the pool, to fill in and pass to <see cref="Issue"/>.</summary>
    public DmaRequest Rent() => _requestPool.Count > 0 ? _requestPool.Pop() : new DmaRequest();

    public void Return(DmaRequest r) => _requestPool.Push(r);

    /// <summary>Starts a request now. Callers check <see cref="CanIssue"/> first.</summary>
    public void Issue(DmaRequest r)
    {
        if (!CanIssue) throw new InvalidOperationException($"{Name}: {Outstanding} requests already outstanding (max {MaxOutstanding})");
        if (r.Bytes <= 0) throw new ArgumentOutOfRangeException(nameof(r), r.Bytes, "a DMA request moves at least one byte");
        Outstanding++;
        r.IssuePs = _sched.Now;
        r.BytesToSend = r.Bytes;
        r.TlpsOutstanding = 0;
        r.Faulted = false;
        r.WalkReads = 0;
        r.FirstPhysicalAddress = 0;
        if (r.Measured) Stats.Issued++;
        _sendQueue.Enqueue(r);
        Pump();
    }

    /// <summary>Sends TLPs for queued requests while credits last.</summary>
    private void Pump()
    {
        var o = Link.Options;
        while (_sendQueue.Count > 0)
        {
            var r = _sendQueue.Peek();
            bool write = r.IsWrite;
            if (write ? _postedCredits == 0 : _nonPostedCredits == 0)
            {
                Stats.CreditStalls++;
                return;
            }
            ulong addr = r.Iova + (ulong)(r.Bytes - r.BytesToSend);
            int limit = write ? o.MaxPayloadBytes : o.MaxReadRequestBytes;
            int toPage = 4096 - (int)(addr & 0xFFF);
            int size = Math.Min(r.BytesToSend, Math.Min(limit, toPage));
            if (write) _postedCredits--; else _nonPostedCredits--;
            var t = _tlpPool.Count > 0 ? _tlpPool.Pop() : new Tlp();
            t.ResetTranslation();
            t.Request = r;
            t.Source = this;
            t.RequesterId = RequesterId.Value;
            t.Pasid = r.Pasid;
            t.HasPasid = r.HasPasid;
            t.Address = addr;
            t.Bytes = size;
            t.IsWrite = write;
            r.TlpsOutstanding++;
            r.BytesToSend -= size;
            if (r.BytesToSend == 0) _sendQueue.Dequeue();
            if (r.Measured) Stats.Tlps++;
            long arrival = Link.SendUpstream(_sched.Now, write ? size : 0);
            _rc.Deliver(t, arrival);
        }
    }

    public void OnCreditReturned(bool posted)
    {
        if (posted) _postedCredits++; else _nonPostedCredits++;
        if (_sendQueue.Count > 0) Pump();
    }

    public void OnTlpDone(Tlp tlp)
    {
        var r = tlp.Request;
        r.TlpsOutstanding--;
        if (tlp.Faulted && !r.Faulted)
        {
            r.Faulted = true;
            r.FaultReason = tlp.FaultReason;
        }
        if (tlp.Address == r.Iova) r.FirstPhysicalAddress = tlp.PhysicalAddress;
        r.WalkReads += tlp.WalkReads;
        tlp.Request = null!;
        _tlpPool.Push(tlp);
        if (r.BytesToSend == 0 && r.TlpsOutstanding == 0) Complete(r);
    }

    private void Complete(DmaRequest r)
    {
        r.CompletePs = _sched.Now;
        Outstanding--;
        if (r.Measured)
        {
            Stats.Completed++;
            if (r.Faulted) Stats.Faulted++;
            else Stats.Bytes += r.Bytes;
            Stats.DmaLatency.Record(r.LatencyPs);
        }
        if (Client is { } c) c.OnDmaComplete(this, r);
        else Return(r);
    }
}
