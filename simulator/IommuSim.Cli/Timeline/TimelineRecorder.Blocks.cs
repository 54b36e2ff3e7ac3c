using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using static IommuSim.Cli.Timeline.TimelineNames;

namespace IommuSim.Cli.Timeline;

/// <summary>The hardware tracks: link, root complex, IOMMU pipeline, walkers, invalidation queue, memory.</summary>
internal sealed partial class TimelineRecorder
{
    // ---- link ---------------------------------------------------------------------------

    public override void OnLinkTransfer(LinkDirection direction, long startPs, long endPs, int wireBytes, int payloadBytes)
    {
        if (!InWindow(startPs) || !_links.TryGetValue(direction, out var track)) return;
        bool up = track.Tid == 1;
        var name = up ? (payloadBytes > 0 ? LinkMwr : LinkHeader) : (payloadBytes > 0 ? LinkCplD : LinkCpl);
        _w.BeginSlice(track.Pid, track.Tid, name, CatPcie, startPs, endPs);
        _w.Arg(AWire, wireBytes);
        _w.Arg(APayload, payloadBytes);
        _w.EndArgs();
    }

    // ---- root complex -------------------------------------------------------------------

    public override void OnRootComplexArrival(Tlp tlp)
    {
        if (!_tlps.TryGetValue(tlp, out var t)) return;
        t.RcArrivalPs = _sched.Now;
        RcSlice(RcUp, t.LinkArrivalPs, t.RcArrivalPs);
    }

    private void RcSlice(System.Text.Json.JsonEncodedText name, long startPs, long endPs)
    {
        if (endPs <= startPs) return;
        int lane = _rcLanes.Acquire(startPs, endPs);
        EnsureThread(PidRootComplex, lane + 1, _rcLanes);
        _w.Slice(PidRootComplex, lane + 1, name, CatPcie, startPs, endPs);
    }

    public override void OnMemoryAccess(Tlp tlp, long donePs)
    {
        if (!_tlps.TryGetValue(tlp, out var t)) return;
        long now = _sched.Now;
        t.MemStartPs = now;
        t.MemDonePs = donePs;
        t.MemLane = _memoryLanes.Acquire(now, donePs);
        EnsureThread(PidMemory, t.MemLane + 1, _memoryLanes);
        _w.BeginSlice(PidMemory, t.MemLane + 1, tlp.IsWrite ? MemWrite : MemRead, CatMemory, now, donePs);
        _w.ArgHex(AAddress, tlp.PhysicalAddress);
        _w.Arg(ABytes, tlp.Bytes);
        _w.Arg(AId, t.Request!.Id);
        _w.EndArgs();
    }

    public override void OnCompletionSent(Tlp tlp, long leaveRootComplexPs, long arrivalPs)
    {
        if (!_tlps.TryGetValue(tlp, out var t)) return;
        t.CplLeaveRcPs = leaveRootComplexPs;
        RcSlice(RcDown, _sched.Now, leaveRootComplexPs);
    }

    // ---- IOMMU pipeline -----------------------------------------------------------------

    public override void OnIommuAccepted(Tlp tlp, long lookupDonePs)
    {
        if (!_tlps.TryGetValue(tlp, out var t)) return;
        long now = _sched.Now;
        t.AcceptPs = now;
        t.LookupDonePs = lookupDonePs;
        t.IommuLane = _iommuSlots.Acquire(now, long.MaxValue);
        EnsureThread(PidIommu, t.IommuLane + 1, _iommuSlots);
        if (t.RcArrivalPs >= 0 && now > t.RcArrivalPs) RcSlice(RcHeld, t.RcArrivalPs, now);
    }

    public override void OnIotlbMiss(Tlp tlp)
    {
        if (_tlps.TryGetValue(tlp, out var t)) t.MissPs = _sched.Now;
    }

    public override void OnFault(Tlp tlp, FaultReason reason)
    {
        long now = _sched.Now;
        bool tracked = _tlps.TryGetValue(tlp, out var t);
        if (tracked) t!.FaultPs = now;
        if (!tracked && !InWindow(now)) return;
        _w.BeginInstant(PidIommu, 0, Fault(reason), CatFault, now, processScope: true);
        _w.ArgHex(AAddress, tlp.Address);
        _w.Arg(ARequester, tlp.RequesterId);
        if (tlp.HasPasid) _w.Arg(APasid, tlp.Pasid);
        _w.EndArgs();
    }

    public override void OnPageRequest(Tlp tlp)
    {
        long now = _sched.Now;
        if (!InWindow(now) && !_requests.ContainsKey(tlp.Request)) return;
        _w.BeginInstant(PidIommu, 0, TimelineNames.PageRequest, CatFault, now, processScope: true);
        _w.ArgHex(AAddress, tlp.Address);
        _w.Arg(ARequester, tlp.RequesterId);
        _w.EndArgs();
    }

    public override void OnTranslated(Tlp tlp)
    {
        if (!_tlps.TryGetValue(tlp, out var t) || t.IommuLane < 0) return;
        long now = _sched.Now;
        t.TranslatedPs = now;
        _iommuSlots.Release(t.IommuLane, now);
        var name = tlp.Faulted && !tlp.IsTranslationRequest ? IommuFault
            : tlp.IsTranslationRequest ? IommuAts
            : t.MissPs >= 0 ? IommuMiss
            : tlp.IotlbHit ? IommuHit : IommuPassThrough;
        int tid = t.IommuLane + 1;
        _w.BeginSlice(PidIommu, tid, name, CatIommu, t.AcceptPs, now);
        _w.Arg(AId, t.Request!.Id);
        _w.ArgHex(AIova, tlp.Address);
        if (t.WalkStartPs >= 0) _w.Arg(AWalkReads, tlp.WalkReads);
        _w.EndArgs();
        long lookupEnd = t.MissPs >= 0 ? t.MissPs : t.FaultPs >= 0 ? t.FaultPs : now;
        if (lookupEnd > t.AcceptPs) _w.Slice(PidIommu, tid, Lookup, CatIommu, t.AcceptPs, lookupEnd);
        if (t.MissPs >= 0 && now > t.MissPs) _w.Slice(PidIommu, tid, MissWait, CatIommu, t.MissPs, now);
    }

    // ---- page walkers -------------------------------------------------------------------

    private readonly record struct WalkRead(bool Stage1, int Level, ulong Address, long IssuePs, long DonePs);

    private sealed class WalkerState
    {
        public bool Traced;
        public readonly List<WalkRead> Reads = [];
        public readonly List<TlpInfo> Tlps = [];
    }

    private readonly WalkerState[] _walkers;

    public override void OnWalkStarted(int walker, Tlp tlp)
    {
        var s = _walkers[walker];
        s.Reads.Clear();
        s.Tlps.Clear();
        bool tracked = _tlps.TryGetValue(tlp, out var t);
        s.Traced = tracked || InWindow(_sched.Now);
        if (tracked) Join(s, t!, walker);
    }

    public override void OnWalkJoined(int walker, Tlp tlp)
    {
        if (_tlps.TryGetValue(tlp, out var t)) Join(_walkers[walker], t, walker);
    }

    private void Join(WalkerState s, TlpInfo t, int walker)
    {
        t.WalkStartPs = _sched.Now;
        t.Walker = walker;
        s.Tlps.Add(t);
    }

    public override void OnWalkRead(int walker, TableStage stage, int level, ulong entryAddress, long issuePs, long donePs)
    {
        var s = _walkers[walker];
        if (s.Traced) s.Reads.Add(new WalkRead(stage == TableStage.First, level, entryAddress, issuePs, donePs));
    }

    public override void OnWalkFinished(int walker, long startPs, int reads, bool faulted)
    {
        var s = _walkers[walker];
        long now = _sched.Now;
        foreach (var t in s.Tlps)
        {
            t.WalkEndPs = now;
            t.WalkTraced = s.Traced;
        }
        s.Tlps.Clear();
        if (!s.Traced) return;
        int tid = walker + 1;
        _w.BeginSlice(PidWalkers, tid, Walk, CatWalk, startPs, now);
        _w.Arg(AReads, reads);
        if (faulted) _w.Arg(AFaulted, 1);
        _w.EndArgs();
        foreach (var r in s.Reads)
        {
            _w.BeginSlice(PidWalkers, tid, _smmu ? SmmuWalkRead(r.Stage1, r.Level) : TimelineNames.WalkRead(r.Stage1, r.Level), CatWalk, r.IssuePs, r.DonePs);
            _w.ArgHex(AAddress, r.Address);
            _w.EndArgs();
        }
        s.Reads.Clear();
        s.Traced = false;
    }

    // ---- invalidation queue -------------------------------------------------------------

    public override void OnInvalidationSubmitted(in InvalidationDescriptor d, long ticket)
    {
        long now = _sched.Now;
        if (!InWindow(now)) return;
        _w.BeginInstant(PidInvalidation, 1, InvalidationSubmit(d.Type), CatInvalidation, now, processScope: false);
        _w.Arg(ATicket, ticket);
        _w.EndArgs();
    }

    public override void OnInvalidationApplied(in InvalidationDescriptor d, long startPs)
    {
        if (!InWindow(startPs)) return;
        _w.BeginSlice(PidInvalidation, 1, Invalidation(d.Type), CatInvalidation, startPs, _sched.Now);
        if (d.Type is not (InvalidationType.Wait or InvalidationType.PageGroupResponse))
        {
            _w.Arg(AGranularity, Granularity(d.Granularity));
            _w.Arg(ADid, d.DomainId);
            if (d.Granularity == InvalidationGranularity.Page)
            {
                _w.ArgHex(AAddress, d.Address);
                _w.Arg(AMask, d.AddressMask);
            }
        }
        _w.EndArgs();
    }
}
