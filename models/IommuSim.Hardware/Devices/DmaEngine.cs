using System.Runtime.CompilerServices;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Caches;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Devices;

/// <summary>
/// A generic PCIe DMA engine: accepts requests up to <c>maxOutstanding</c>, splits each into
/// memory-request TLPs (MPS for writes, MRRS for reads, never across a 4 KiB boundary) and sends
/// them over its link as flow-control credits allow. A request completes when its last write is
/// accepted by memory or its last read completion arrives. Requests and TLPs are pooled.
/// With ATS, each TLP's page is looked up in the device TLB (ATC); a miss sends a translation
/// request and holds the send queue until the completion returns (in-order device); translated
/// TLPs bypass the IOMMU. With PRI, a failed translation becomes a page request, and the send
/// queue waits for software's page response.
/// </summary>
public sealed class DmaEngine : ITlpSource, IAtsEndpoint
{
    private readonly LruCache<AtcTag, AtcEntry>? _atc;
    private bool _waitingTranslation;
    private bool _skipNextAtcCount;
    private int _pendingPageGroup = -1;
    private int _nextPageGroup;
    private ulong _pendingPage;
    private long _trSentPs;

    private readonly Scheduler _sched;
    private readonly RootComplex _rc;
    private readonly Stack<DmaRequest> _requestPool = new();
    private readonly Stack<Tlp> _tlpPool = new();
    private readonly Queue<DmaRequest> _sendQueue = new();

    /// <summary>A device on <paramref name="port"/>'s link, sending its TLPs to <paramref name="rc"/>.</summary>
    public DmaEngine(DeviceOptions options, RootPort port, RootComplex rc, Scheduler sched)
    {
        Options = options;
        Name = options.Name;
        RequesterId = options.RequesterId;
        MaxOutstanding = options.MaxOutstanding;
        Port = port;
        port.Connect(this);
        _rc = rc;
        _sched = sched;
        if (options.Ats.Enabled) _atc = new LruCache<AtcTag, AtcEntry>("atc", options.Ats.Entries);
    }

    public bool AtsEnabled => _atc is not null;
    public AtsStats Ats { get; } = new();

    public DeviceOptions Options { get; }
    public string Name { get; }
    public RequesterId RequesterId { get; }
    public int MaxOutstanding { get; }
    public PcieLink Link => Port.Link;
    /// <summary>The root port at the other end of the link: its credits limit what the device may send.</summary>
    public RootPort Port { get; }
    public DeviceStats Stats { get; } = new();
    public IDmaClient? Client { get; set; }
    /// <summary>Hooks (tracing); null when nobody listens. Set through <see cref="Platform.AddObserver"/>.</summary>
    public HardwareObserver? Observer { get; internal set; }
    public int Outstanding { get; private set; }
    public bool CanIssue => Outstanding < MaxOutstanding;

    /// <summary>A request object from the pool, to fill in and pass to <see cref="Issue"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public DmaRequest Rent() => _requestPool.Count > 0 ? _requestPool.Pop() : new DmaRequest();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Return(DmaRequest r)
    {
        r.Owner = null;
        _requestPool.Push(r);
    }

    /// <summary>Starts a request now. Callers check <see cref="CanIssue"/> first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
        Observer?.OnDmaIssued(this, r);
        _sendQueue.Enqueue(r);
        Pump();
    }

    /// <summary>Sends TLPs for queued requests while credits last.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Pump()
    {
        var o = Link.Options;
        while (_sendQueue.Count > 0 && !_waitingTranslation)
        {
            var r = _sendQueue.Peek();
            bool write = r.IsWrite;
            if (!Port.HasCredit(posted: write))
            {
                Stats.CreditStalls++;
                return;
            }
            ulong addr = r.Iova + (ulong)(r.Bytes - r.BytesToSend);
            int limit = write ? o.MaxPayloadBytes : o.MaxReadRequestBytes;
            int toPage = 4096 - (int)(addr & 0xFFF);
            int size = Math.Min(r.BytesToSend, Math.Min(limit, toPage));
            ulong physical = 0;
            if (_atc is not null)
            {
                var tag = new AtcTag(r.HasPasid ? r.Pasid : NoPasid, addr >> 12);
                bool counted = !_skipNextAtcCount;
                _skipNextAtcCount = false;
                if (counted) Ats.AtcLookups++;
                if (_atc.TryGet(tag, out var e) && (e.Access & (write ? Access.Write : Access.Read)) != 0)
                {
                    if (counted) Ats.AtcHits++;
                    physical = (e.PhysicalPage << 12) | (addr & 0xFFF);
                }
                else
                {
                    if (counted) Ats.AtcMisses++;
                    SendTranslationRequest(r, addr);
                    return;
                }
            }
            Port.ConsumeCredit(posted: write);
            var t = RentTlp(r, addr, write);
            t.Bytes = size;
            if (_atc is not null)
            {
                t.Translated = true;
                t.PhysicalAddress = physical;
            }
            r.TlpsOutstanding++;
            r.BytesToSend -= size;
            if (r.BytesToSend == 0) _sendQueue.Dequeue();
            if (r.Measured) Stats.Tlps++;
            long arrival = Link.SendUpstream(_sched.Now, write ? size : 0);
            Observer?.OnTlpSent(this, t, arrival);
            _rc.Deliver(t, arrival);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnCreditReturned(bool posted)
    {
        if (_sendQueue.Count > 0) Pump();
    }

    private const uint NoPasid = uint.MaxValue;

    private Tlp NewControlTlp(DmaRequest r, ulong page) => RentTlp(r, page, r.IsWrite);

    /// <summary>A pooled TLP of request <paramref name="r"/> at <paramref name="address"/>, translation state cleared.</summary>
    private Tlp RentTlp(DmaRequest r, ulong address, bool write)
    {
        var t = _tlpPool.Count > 0 ? _tlpPool.Pop() : new Tlp();
        t.ResetTranslation();
        t.Request = r;
        t.Source = this;
        t.RequesterId = RequesterId.Value;
        t.Pasid = r.Pasid;
        t.HasPasid = r.HasPasid;
        t.Address = address;
        t.IsWrite = write;
        return t;
    }

    private void SendTranslationRequest(DmaRequest r, ulong addr)
    {
        _waitingTranslation = true;
        _pendingPage = addr & ~0xFFFUL;
        var t = NewControlTlp(r, _pendingPage);
        t.IsTranslationRequest = true;
        t.Bytes = 0;
        Port.ConsumeCredit(posted: false);
        Ats.TranslationRequests++;
        _trSentPs = _sched.Now;
        long arrival = Link.SendUpstream(_sched.Now, 0);
        Observer?.OnTlpSent(this, t, arrival);
        _rc.Deliver(t, arrival);
    }

    private void SendPageRequest(DmaRequest r)
    {
        var t = NewControlTlp(r, _pendingPage);
        t.IsPageRequest = true;
        t.PageGroupIndex = _pendingPageGroup = _nextPageGroup++ & 0x1FF;
        Ats.PageRequests++;
        Port.ConsumeCredit(posted: true);
        // A page request message is a header-only posted TLP.
        long arrival = Link.SendUpstream(_sched.Now, 0);
        Observer?.OnTlpSent(this, t, arrival);
        _rc.Deliver(t, arrival);
    }

    private void OnTranslationCompletion(Tlp tr)
    {
        var r = tr.Request;
        Ats.TranslationRoundTrip.Record(_sched.Now - _trSentPs);
        if (!tr.Faulted)
        {
            var rights = tr.IsWrite ? Access.ReadWrite : Access.Read;
            _atc!.Insert(new AtcTag(r.HasPasid ? r.Pasid : NoPasid, tr.Address >> 12), new AtcEntry(tr.PhysicalAddress >> 12, rights));
            _waitingTranslation = false;
            _skipNextAtcCount = true;
            Pump();
            return;
        }
        Ats.TranslationFailures++;
        if (Options.Ats.Pri)
        {
            SendPageRequest(r); // the send queue stays blocked until the page response
            return;
        }
        FailHead(tr.FaultReason);
    }

    /// <summary>The request at the head of the send queue cannot be translated: it completes as faulted.</summary>
    private void FailHead(FaultReason reason)
    {
        var r = _sendQueue.Dequeue();
        r.Faulted = true;
        r.FaultReason = reason;
        r.BytesToSend = 0;
        _waitingTranslation = false;
        if (r.TlpsOutstanding == 0) Complete(r);
        Pump();
    }

    int IAtsEndpoint.InvalidateDeviceTlb(in InvalidationDescriptor d)
    {
        Ats.DeviceTlbInvalidations++;
        if (_atc is null) return 0;
        int n;
        if (d.Granularity == InvalidationGranularity.Global) n = _atc.InvalidateAll();
        else
        {
            ulong size = 1UL << (12 + d.AddressMask);
            ulong first = (d.Address & ~(size - 1)) >> 12, last = first + (size >> 12) - 1;
            bool anyPasid = d.Type == InvalidationType.DeviceTlb;
            n = _atc.InvalidateWhere((first, last, anyPasid, d.Pasid), static (k, _, s) =>
                k.Page >= s.first && k.Page <= s.last && (s.anyPasid || k.Pasid == s.Pasid));
        }
        Ats.AtcInvalidatedEntries += n;
        return n;
    }

    void IAtsEndpoint.OnPageResponse(in InvalidationDescriptor d)
    {
        if (d.PageGroupIndex != _pendingPageGroup || _sendQueue.Count == 0) return;
        Ats.PageResponses++;
        _pendingPageGroup = -1;
        var r = _sendQueue.Peek();
        if (d.ResponseCode == PageResponseCode.Success) SendTranslationRequest(r, _pendingPage);
        else FailHead(FaultReason.PageResponseFailure);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnTlpDone(Tlp tlp)
    {
        Observer?.OnTlpDone(this, tlp);
        if (tlp.IsTranslationRequest || tlp.IsPageRequest)
        {
            if (tlp.IsTranslationRequest) OnTranslationCompletion(tlp);
            tlp.Request = null!;
            _tlpPool.Push(tlp);
            return;
        }
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

    private readonly record struct AtcTag(uint Pasid, ulong Page);

    private readonly record struct AtcEntry(ulong PhysicalPage, Access Access);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Complete(DmaRequest r)
    {
        r.CompletePs = _sched.Now;
        Outstanding--;
        Observer?.OnDmaCompleted(this, r);
        if (r.Measured)
        {
            Stats.Completed++;
            if (r.Faulted) Stats.Faulted++;
            else Stats.Bytes += r.Bytes;
            Stats.DmaLatency.Record(r.LatencyPs);
        }
        if ((r.Owner ?? Client) is { } c) c.OnDmaComplete(this, r);
        else Return(r);
    }
}
