using System.Globalization;
using System.Text.Json;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.Pcie;
using IommuSim.Uapi.DmaApi;
using static IommuSim.Cli.Timeline.TimelineNames;

namespace IommuSim.Cli.Timeline;

/// <summary>
/// <c>iommusim run --timeline FILE</c>: an observer on the hardware and software hooks that writes a
/// Chrome/Perfetto trace-event file. One process per hardware block (device, its link, root complex,
/// IOMMU pipeline, page walkers, invalidation queue, memory) and per software actor (driver CPUs,
/// VMM); each DMA request is a slice on its device, cut into phases that tile it from issue to
/// completion, joined to its IOMMU, walker and memory slices by a flow. Bounded: requests issued in
/// the window, at most <see cref="TimelineWindow.MaxRequests"/> of them (recording stops when the
/// next one is issued and detaches once the recorded ones completed). Only observes: results are the
/// same with and without it. Per-request bookkeeping is pooled.
/// </summary>
internal sealed partial class TimelineRecorder : HardwareObserver, IDisposable
{
    private const int PidDeviceBase = 100, PidLinkBase = 200, PidRootComplex = 300, PidIommu = 400, PidWalkers = 401,
        PidInvalidation = 402, PidMemory = 500, PidDriverCpus = 600, PidVmm = 601;

    private readonly TraceEventWriter _w;
    private readonly TimelineWindow _window;
    private readonly Platform _platform;
    private readonly Scheduler _sched;
    private readonly string _design;
    private readonly bool _overheadsTrap;
    private readonly KernelDmaApi? _api;
    private readonly IopfHandler? _iopf;
    private readonly Software _software;
    private readonly Dictionary<DmaEngine, int> _deviceIndex = [];
    private readonly Dictionary<LinkDirection, (int Pid, int Tid)> _links = [];
    private readonly Dictionary<DmaRequest, RequestInfo> _requests = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<Tlp, TlpInfo> _tlps = new(ReferenceEqualityComparer.Instance);
    private readonly Stack<RequestInfo> _requestPool = new();
    private readonly Stack<TlpInfo> _tlpPool = new();
    private readonly HashSet<(int Pid, int Tid)> _namedThreads = [];
    private readonly Lanes[] _deviceTags;
    private readonly Lanes _rcLanes = new("lane"), _iommuSlots = new("slot"), _memoryLanes = new("lane"), _vmmLanes = new("vCPU exit");
    private long _endPs;
    private long _nextId = 1;
    private int _recorded;
    private bool _truncated;
    private bool _attached;
    private readonly bool _smmu;
    private long _anomalies;

    public TimelineRecorder(string path, TimelineWindow window, Platform platform, string design, KernelDmaApi? api, IopfHandler? iopf)
    {
        _window = window;
        _platform = platform;
        _sched = platform.Scheduler;
        _design = design;
        _overheadsTrap = Uapi.Designs.TranslationDesigns.Find(design)?.OverheadsTrapToVmm == true;
        _api = api;
        _iopf = iopf;
        _endPs = window.EndPs;
        _w = new TraceEventWriter(path);
        _software = new Software(this);
        _deviceTags = new Lanes[platform.Devices.Count];
        for (int i = 0; i < platform.Devices.Count; i++)
        {
            var d = platform.Devices[i];
            _deviceIndex[d] = i;
            _deviceTags[i] = new Lanes("tag");
            _links[d.Link.Upstream] = (PidLinkBase + i, 1);
            _links[d.Link.Downstream] = (PidLinkBase + i, 2);
            _w.NameProcess(PidDeviceBase + i, $"device {d.Name} ({d.Options.Bdf})", 10 + 3 * i);
            _w.NameProcess(PidLinkBase + i, $"PCIe link {d.Name}", 11 + 3 * i);
            _w.NameThread(PidLinkBase + i, 1, "upstream (device to root port)", 1);
            _w.NameThread(PidLinkBase + i, 2, "downstream (root port to device)", 2);
        }
        _w.NameProcess(PidRootComplex, "root port / root complex", 100);
        _smmu = platform.Smmu is not null;
        int walkers = platform.Smmu?.Options.Walkers.Count ?? platform.Iommu.Options.Walkers.Count;
        _w.NameProcess(PidIommu, _smmu ? "SMMUv3 pipeline" : "IOMMU pipeline", 101);
        _w.NameProcess(PidWalkers, _smmu ? "SMMUv3 table walkers" : "IOMMU page walkers", 102);
        for (int i = 0; i < walkers; i++) _w.NameThread(PidWalkers, i + 1, $"walker {i}", i);
        _w.NameProcess(PidInvalidation, _smmu ? "SMMUv3 command queues" : "invalidation queue", 103);
        _w.NameThread(PidInvalidation, 1, _smmu ? "main queue" : "descriptors", 0);
        _w.NameProcess(PidMemory, "memory", 104);
        _w.NameProcess(PidDriverCpus, "driver CPUs (DMA API)", 200);
        _w.NameProcess(PidVmm, "VMM", 201);
        _walkers = new WalkerState[walkers];
        for (int i = 0; i < _walkers.Length; i++) _walkers[i] = new WalkerState();
        Attach();
    }

    /// <summary>Requests recorded (issued in the window, within the cap).</summary>
    public int Recorded => _recorded;

    private void Attach()
    {
        _platform.AddObserver(this);
        if (_api is not null) _api.Observer = _software;
        if (_iopf is not null) _iopf.Observer = _software;
        _attached = true;
    }

    /// <summary>Everything recorded has completed and nothing more will be: stop paying for the hooks.</summary>
    private void DetachIfDone()
    {
        if (!_attached || _sched.Now < _endPs || _requests.Count > 0) return;
        _platform.RemoveObserver(this);
        if (_api is not null) _api.Observer = null;
        if (_iopf is not null) _iopf.Observer = null;
        _attached = false;
    }

    /// <summary>Time-based recording (hardware and software tracks) covers [start, end), end cut short by the request cap.</summary>
    private bool InWindow(long ps) => ps >= _window.StartPs && ps < _endPs;

    /// <summary>Finishes the file (call after the run).</summary>
    public void Complete(string configName)
    {
        if (_attached)
        {
            _platform.RemoveObserver(this);
            if (_api is not null) _api.Observer = null;
            if (_iopf is not null) _iopf.Observer = null;
            _attached = false;
        }
        string T(long ps) => ps == long.MaxValue ? "end" : (ps / 1_000_000m).ToString(CultureInfo.InvariantCulture) + "us";
        _w.Complete(
        [
            ("generator", "iommusim run --timeline (docs/timeline.md)"),
            ("config", configName),
            ("design", _design),
            ("window", $"{T(_window.StartPs)}..{T(_endPs)}"),
            ("maxRequests", _window.MaxRequests.ToString(CultureInfo.InvariantCulture)),
            ("requestsRecorded", _recorded.ToString(CultureInfo.InvariantCulture)),
            ("truncatedByRequestCap", _truncated ? "true" : "false"),
            ("requestsUnfinished", _requests.Count.ToString(CultureInfo.InvariantCulture)),
            ("phaseAnomalies", _anomalies.ToString(CultureInfo.InvariantCulture)),
        ]);
    }

    public void Dispose()
    {
        if (_attached)
        {
            _platform.RemoveObserver(this);
            _attached = false;
        }
        _w.Dispose();
    }

    private void EnsureThread(int pid, int tid, Lanes lanes)
    {
        if (_namedThreads.Add((pid, tid))) _w.NameThread(pid, tid, $"{lanes.Prefix} {tid - 1}", tid);
    }

    // ---- requests -----------------------------------------------------------------------

    private sealed class RequestInfo
    {
        public long Id;
        public int Device;
        public int Lane;
        public bool HasCritical;
        public int Tlps;
        public readonly TlpInfo Critical = new();
    }

    /// <summary>The times one TLP reached each stage (-1: did not happen).</summary>
    private sealed class TlpInfo
    {
        public RequestInfo? Request;
        public long SentPs, LinkArrivalPs, RcArrivalPs, AcceptPs, LookupDonePs, MissPs, FaultPs, WalkStartPs, WalkEndPs,
            TranslatedPs, MemStartPs, MemDonePs, CplLeaveRcPs, DonePs;
        public int Walker, IommuLane, MemLane;
        public bool WalkTraced, Faulted;
        // SMMUv3: configuration-cache lookup done, STE/CD fetch, TLB lookup done, CMD_RESUME of a stalled fault.
        public bool Smmu, FetchJoined;
        public long ConfigPs, FetchStartPs, FetchDonePs, TlbDonePs, ResumePs;
        public const int MaxConfigReads = 16;
        public int ConfigReads;
        public readonly Hardware.Smmu.SmmuConfigRead[] ConfigRead = new Hardware.Smmu.SmmuConfigRead[MaxConfigReads];
        public readonly ulong[] ConfigReadAddress = new ulong[MaxConfigReads];
        public readonly long[] ConfigReadIssuePs = new long[MaxConfigReads], ConfigReadDonePs = new long[MaxConfigReads];

        public void Reset(RequestInfo? r)
        {
            Request = r;
            SentPs = LinkArrivalPs = RcArrivalPs = AcceptPs = LookupDonePs = MissPs = FaultPs = WalkStartPs = WalkEndPs =
                TranslatedPs = MemStartPs = MemDonePs = CplLeaveRcPs = DonePs = -1;
            ConfigPs = FetchStartPs = FetchDonePs = TlbDonePs = ResumePs = -1;
            Walker = IommuLane = MemLane = -1;
            WalkTraced = Faulted = Smmu = FetchJoined = false;
            ConfigReads = 0;
        }

        public void CopyFrom(TlpInfo o)
        {
            SentPs = o.SentPs; LinkArrivalPs = o.LinkArrivalPs; RcArrivalPs = o.RcArrivalPs; AcceptPs = o.AcceptPs;
            LookupDonePs = o.LookupDonePs; MissPs = o.MissPs; FaultPs = o.FaultPs; WalkStartPs = o.WalkStartPs; WalkEndPs = o.WalkEndPs;
            TranslatedPs = o.TranslatedPs; MemStartPs = o.MemStartPs; MemDonePs = o.MemDonePs; CplLeaveRcPs = o.CplLeaveRcPs;
            DonePs = o.DonePs; Walker = o.Walker; IommuLane = o.IommuLane; MemLane = o.MemLane; WalkTraced = o.WalkTraced; Faulted = o.Faulted;
            Smmu = o.Smmu; FetchJoined = o.FetchJoined; ConfigPs = o.ConfigPs; FetchStartPs = o.FetchStartPs; FetchDonePs = o.FetchDonePs;
            TlbDonePs = o.TlbDonePs; ResumePs = o.ResumePs;
        }
    }

    public override void OnDmaIssued(DmaEngine device, DmaRequest request)
    {
        long now = _sched.Now;
        if (now < _window.StartPs || now >= _endPs) return;
        if (_recorded >= _window.MaxRequests)
        {
            // The cap: everything from here on is outside the timeline.
            _endPs = now;
            _truncated = true;
            DetachIfDone();
            return;
        }
        _recorded++;
        var r = _requestPool.Count > 0 ? _requestPool.Pop() : new RequestInfo();
        r.Id = _nextId++;
        r.Device = _deviceIndex[device];
        r.Lane = _deviceTags[r.Device].Acquire(now, long.MaxValue);
        r.HasCritical = false;
        r.Tlps = 0;
        _requests[request] = r;
        EnsureThread(PidDeviceBase + r.Device, r.Lane + 1, _deviceTags[r.Device]);
    }

    public override void OnTlpSent(DmaEngine device, Tlp tlp, long linkArrivalPs)
    {
        if (!_requests.TryGetValue(tlp.Request, out var r)) return;
        var t = _tlpPool.Count > 0 ? _tlpPool.Pop() : new TlpInfo();
        t.Reset(r);
        t.SentPs = _sched.Now;
        t.LinkArrivalPs = linkArrivalPs;
        r.Tlps++;
        _tlps[tlp] = t;
    }

    public override void OnTlpDone(DmaEngine device, Tlp tlp)
    {
        if (!_tlps.Remove(tlp, out var t)) return;
        t.DonePs = _sched.Now;
        t.Faulted = tlp.Faulted;
        var r = t.Request!;
        // The request's critical path is its last TLP to finish.
        if (!r.HasCritical || t.DonePs >= r.Critical.DonePs)
        {
            r.Critical.CopyFrom(t);
            r.HasCritical = true;
        }
        t.Request = null;
        _tlpPool.Push(t);
    }

    public override void OnDmaCompleted(DmaEngine device, DmaRequest request)
    {
        if (!_requests.Remove(request, out var r)) return;
        _deviceTags[r.Device].Release(r.Lane, request.CompletePs);
        WriteRequest(request, r);
        _requestPool.Push(r);
        DetachIfDone();
    }

    private readonly JsonEncodedText[] _phaseNames = new JsonEncodedText[20];
    private readonly long[] _phaseEnds = new long[20];
    private int _phaseCount;
    private long _phaseLast;

    private void AddPhase(JsonEncodedText name, long endPs)
    {
        if (endPs < 0) return;
        if (endPs < _phaseLast) { _anomalies++; return; }
        if (endPs == _phaseLast) return;
        _phaseNames[_phaseCount] = name;
        _phaseEnds[_phaseCount++] = endPs;
        _phaseLast = endPs;
    }

    /// <summary>The SMMU's part of a request: slot wait, (stall,) configuration cache, STE/CD fetch, TLB, walk.</summary>
    private void SmmuPhases(TlpInfo c)
    {
        AddPhase(PhHeld, c.AcceptPs);
        AddPhase(PhStalled, c.ResumePs);
        AddPhase(PhConfigLookup, c.ConfigPs);
        AddPhase(PhConfigFetch, c.FetchDonePs);
        LookupPhases(c, PhTlbLookup);
    }

    /// <summary>The translation lookup (VT-d: context + IOTLB; SMMUv3: TLB), then the walk or the fault, on either IOMMU.</summary>
    private void LookupPhases(TlpInfo c, JsonEncodedText lookup)
    {
        if (c.MissPs >= 0)
        {
            AddPhase(lookup, c.MissPs);
            if (c.WalkStartPs >= 0)
            {
                AddPhase(PhWalkQueue, c.WalkStartPs);
                AddPhase(PhWalk, c.WalkEndPs);
                AddPhase(c.Faulted ? PhFaultRecord : PhAfterWalk, c.TranslatedPs);
            }
            else AddPhase(PhWalkQueue, c.TranslatedPs); // served by an entry filled while it waited
        }
        else if (c.FaultPs >= 0)
        {
            AddPhase(lookup, c.FaultPs);
            AddPhase(PhFaultRecord, c.TranslatedPs);
        }
        else AddPhase(lookup, c.TranslatedPs);
    }

    /// <summary>
    /// The request slice and its phases: the critical TLP's stages, in order, from issue to
    /// completion (device queue, link, root complex, IOMMU lookup/walk, memory, completion back).
    /// Each phase ends where the next begins, so they add up to the request's latency.
    /// </summary>
    private void WriteRequest(DmaRequest req, RequestInfo r)
    {
        _phaseCount = 0;
        _phaseLast = req.IssuePs;
        var c = r.Critical;
        if (r.HasCritical)
        {
            AddPhase(PhDevice, c.SentPs);
            AddPhase(PhLinkUp, c.LinkArrivalPs);
            AddPhase(PhRcUp, c.RcArrivalPs);
            if (c.AcceptPs >= 0 && c.Smmu) SmmuPhases(c);
            else if (c.AcceptPs >= 0)
            {
                AddPhase(PhHeld, c.AcceptPs);
                LookupPhases(c, PhLookup);
            }
            if (c.MemStartPs >= 0)
            {
                AddPhase(PhOrdering, c.MemStartPs);
                AddPhase(PhMemory, c.MemDonePs);
            }
            if (c.CplLeaveRcPs >= 0)
            {
                AddPhase(PhRcDown, c.CplLeaveRcPs);
                AddPhase(PhLinkDown, c.DonePs);
            }
            AddPhase(PhOrdering, c.DonePs);
        }
        AddPhase(PhDeviceTail, req.CompletePs);

        int pid = PidDeviceBase + r.Device, tid = r.Lane + 1;
        _w.BeginSlice(pid, tid, req.IsWrite ? Write : Read, CatDma, req.IssuePs, req.CompletePs);
        _w.Arg(AId, r.Id);
        _w.ArgHex(AIova, req.Iova);
        _w.Arg(ABytes, req.Bytes);
        _w.Arg(ATlps, r.Tlps);
        _w.Arg(AWalkReads, req.WalkReads);
        _w.ArgNs(ALatency, req.LatencyPs);
        if (req.Faulted) _w.Arg(AFault, FaultKey(req.FaultReason));
        _w.EndArgs();
        long start = req.IssuePs;
        for (int i = 0; i < _phaseCount; i++)
        {
            _w.Slice(pid, tid, _phaseNames[i], CatPhase, start, _phaseEnds[i]);
            if (i < _phaseCount - 1) start = _phaseEnds[i];
        }

        // The flow: issue → IOMMU → walker → memory → completion, each bound to the slice it points at.
        _w.Flow('s', pid, tid, Flow, CatFlow, r.Id, req.IssuePs);
        if (r.HasCritical)
        {
            if (c.IommuLane >= 0) _w.Flow('t', PidIommu, c.IommuLane + 1, Flow, CatFlow, r.Id, c.AcceptPs);
            if (c.WalkTraced) _w.Flow('t', PidWalkers, c.Walker + 1, Flow, CatFlow, r.Id, c.WalkStartPs);
            if (c.MemLane >= 0) _w.Flow('t', PidMemory, c.MemLane + 1, Flow, CatFlow, r.Id, c.MemStartPs);
        }
        _w.Flow('f', pid, tid, Flow, CatFlow, r.Id, _phaseCount > 0 ? start : req.IssuePs);
    }
}
