using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;
using static IommuSim.Cli.Timeline.TimelineNames;

namespace IommuSim.Cli.Timeline;

/// <summary>
/// The SMMUv3's tracks (<c>iommu.architecture = smmuv3</c>): each transaction on its translation slot
/// (configuration-cache lookup, STE/CD fetch with one slice per dependent read, TLB lookup, the wait for
/// its walk), the table walkers (shared with VT-d's hooks, SMMU level names), and every command queue
/// (the main one and Tegra241 VCMDQs) consuming its commands.
/// </summary>
internal sealed partial class TimelineRecorder
{
    private readonly Dictionary<CommandQueue, int> _queueTids = new(ReferenceEqualityComparer.Instance);
    private int _vcmdqs;

    private bool Tracked(SmmuTransaction t, out TlpInfo info)
    {
        info = null!;
        return t.Packet is { } tlp && _tlps.TryGetValue(tlp, out info!);
    }

    public override void OnSmmuAccepted(SmmuTransaction t, long configLookupDonePs)
    {
        if (!Tracked(t, out var i)) return;
        long now = _sched.Now;
        i.Smmu = true;
        i.AcceptPs = now;
        i.LookupDonePs = i.ConfigPs = configLookupDonePs;
        i.IommuLane = _iommuSlots.Acquire(now, long.MaxValue);
        EnsureThread(PidIommu, i.IommuLane + 1, _iommuSlots);
        if (i.RcArrivalPs >= 0 && now > i.RcArrivalPs) RcSlice(RcHeld, i.RcArrivalPs, now);
    }

    public override void OnSmmuConfigRead(SmmuTransaction t, SmmuConfigRead read, ulong address, long donePs)
    {
        if (!Tracked(t, out var i) || i.ConfigReads == TlpInfo.MaxConfigReads) return;
        int k = i.ConfigReads++;
        i.ConfigRead[k] = read;
        i.ConfigReadAddress[k] = address;
        i.ConfigReadIssuePs[k] = _sched.Now;
        i.ConfigReadDonePs[k] = donePs;
    }

    public override void OnSmmuConfigFetched(SmmuTransaction t, long startPs, bool joined)
    {
        if (!Tracked(t, out var i)) return;
        i.FetchStartPs = i.ConfigPs >= 0 ? i.ConfigPs : startPs;
        i.FetchDonePs = _sched.Now;
        i.FetchJoined = joined;
    }

    public override void OnSmmuTlbLookup(SmmuTransaction t, bool hit)
    {
        if (!Tracked(t, out var i)) return;
        i.TlbDonePs = _sched.Now;
        if (!hit) i.MissPs = _sched.Now;
    }

    public override void OnSmmuWalkStarted(int walker, SmmuTransaction t)
    {
        var s = _walkers[walker];
        s.Reads.Clear();
        s.Tlps.Clear();
        bool tracked = Tracked(t, out var i);
        s.Traced = tracked || InWindow(_sched.Now);
        if (tracked) Join(s, i, walker);
    }

    public override void OnSmmuWalkJoined(int walker, SmmuTransaction t)
    {
        if (Tracked(t, out var i)) Join(_walkers[walker], i, walker);
    }

    public override void OnSmmuFault(SmmuTransaction t, SmmuEventType type, bool stage2, bool recorded, bool stalled)
    {
        long now = _sched.Now;
        bool tracked = Tracked(t, out var i);
        if (tracked) i.FaultPs = now;
        if (!tracked && !InWindow(now)) return;
        _w.BeginInstant(PidIommu, 0, SmmuFault(type), CatFault, now, processScope: true);
        _w.ArgHex(AAddress, t.Address);
        _w.Arg(ASid, t.Sid);
        if (t.HasSsid) _w.Arg(ASsid, t.Ssid);
        if (stage2) _w.Arg(AStage2, 1);
        _w.Arg(ARecorded, recorded ? 1 : 0);
        if (stalled) _w.Arg(AStalled, 1);
        _w.EndArgs();
    }

    public override void OnSmmuResumed(SmmuTransaction t, bool retry)
    {
        if (!Tracked(t, out var i)) return;
        // The first attempt and the stall become one phase; the retry's stages are measured afresh.
        i.ResumePs = _sched.Now;
        i.ConfigPs = i.FetchStartPs = i.FetchDonePs = i.TlbDonePs = i.MissPs = i.FaultPs = i.WalkStartPs = i.WalkEndPs = -1;
        i.ConfigReads = 0;
        i.WalkTraced = false;
    }

    public override void OnSmmuTranslated(SmmuTransaction t)
    {
        if (!Tracked(t, out var i) || i.IommuLane < 0) return;
        long now = _sched.Now;
        i.TranslatedPs = now;
        _iommuSlots.Release(i.IommuLane, now);
        var name = t.Faulted ? IommuFault : i.MissPs >= 0 ? SmmuTlbMiss : t.TlbHit ? SmmuTlbHit : SmmuBypass;
        int tid = i.IommuLane + 1;
        _w.BeginSlice(PidIommu, tid, name, CatIommu, i.AcceptPs, now);
        _w.Arg(AId, i.Request!.Id);
        _w.ArgHex(AIova, t.Address);
        _w.Arg(ASid, t.Sid);
        if (t.HasSsid) _w.Arg(ASsid, t.Ssid);
        if (i.WalkStartPs >= 0) _w.Arg(AWalkReads, t.WalkReads);
        if (t.Faulted) _w.Arg(AFault, SmmuFaultKey(t.Fault));
        _w.EndArgs();
        long start = i.ResumePs >= 0 ? i.ResumePs : i.AcceptPs;
        if (i.ResumePs > i.AcceptPs) _w.Slice(PidIommu, tid, SmmuStalled, CatIommu, i.AcceptPs, i.ResumePs);
        if (i.ConfigPs > start) _w.Slice(PidIommu, tid, SmmuConfigLookup, CatIommu, start, i.ConfigPs);
        if (i.FetchDonePs >= 0 && i.FetchDonePs > i.FetchStartPs)
        {
            _w.BeginSlice(PidIommu, tid, SmmuConfigFetch, CatIommu, i.FetchStartPs, i.FetchDonePs);
            _w.Arg(AReads, i.ConfigReads);
            if (i.FetchJoined) _w.Arg(AJoined, 1);
            _w.EndArgs();
            for (int k = 0; k < i.ConfigReads; k++)
            {
                _w.BeginSlice(PidIommu, tid, SmmuConfigReadName(i.ConfigRead[k]), CatIommu, i.ConfigReadIssuePs[k], i.ConfigReadDonePs[k]);
                _w.ArgHex(AAddress, i.ConfigReadAddress[k]);
                _w.EndArgs();
            }
        }
        long tlbStart = Math.Max(start, Math.Max(i.ConfigPs, i.FetchDonePs));
        if (i.TlbDonePs > tlbStart) _w.Slice(PidIommu, tid, SmmuTlbLookup, CatIommu, tlbStart, i.TlbDonePs);
        if (i.MissPs >= 0 && now > i.MissPs) _w.Slice(PidIommu, tid, MissWait, CatIommu, i.MissPs, now);
    }

    // ---- command queues -------------------------------------------------------------------

    private int QueueTid(CommandQueue q)
    {
        if (_queueTids.TryGetValue(q, out int tid)) return tid;
        // Thread 1 is the main queue (named at start); extra queues (Tegra241 VCMDQs) follow in the order they first work.
        bool main = ReferenceEquals(q, _platform.Smmu?.CommandQueue);
        tid = main ? 1 : 2 + _vcmdqs++;
        _queueTids[q] = tid;
        if (!main) _w.NameThread(PidInvalidation, tid, $"VCMDQ {tid - 2} (guest-owned)", tid);
        return tid;
    }

    public override void OnSmmuCommand(CommandQueue queue, in SmmuCommand c, long submitPs, long fetchPs)
    {
        if (!InWindow(fetchPs)) return;
        long now = _sched.Now;
        int tid = QueueTid(queue);
        _w.BeginSlice(PidInvalidation, tid, SmmuCommandName(c.Opcode), CatInvalidation, fetchPs, now);
        _w.ArgNs(AQueuedNs, Math.Max(0, fetchPs - submitPs));
        switch (SmmuCommandClassOf(c.Opcode))
        {
            case 0: // CFGI
                _w.Arg(ASid, c.Sid);
                if (c.Opcode == SmmuOpcode.CfgiCd) _w.Arg(ASsid, c.Ssid);
                break;
            case 1: // TLBI
                _w.Arg(AVmid, c.Vmid);
                if (c.Opcode is SmmuOpcode.TlbiNhAsid or SmmuOpcode.TlbiNhVa) _w.Arg(AAsid, c.Asid);
                if (c.Opcode is SmmuOpcode.TlbiNhVa or SmmuOpcode.TlbiNhVaa or SmmuOpcode.TlbiS2Ipa)
                {
                    _w.ArgHex(AAddress, c.Address);
                    _w.Arg(APages, c.Pages);
                }
                break;
            case 2: // ATC_INV, PRI_RESP, RESUME
                _w.Arg(ASid, c.Sid);
                if (c.Opcode == SmmuOpcode.AtcInv) _w.ArgHex(AAddress, c.Address);
                break;
            default: // CMD_SYNC: what the driver waiting on it sees
                _w.ArgNs(AWaitNs, now - submitPs);
                break;
        }
        _w.EndArgs();
    }

    public override void OnSmmuCommandQueueFull(CommandQueue queue, int commands)
    {
        long now = _sched.Now;
        if (!InWindow(now)) return;
        _w.BeginInstant(PidInvalidation, QueueTid(queue), SmmuQueueFull, CatInvalidation, now, processScope: false);
        _w.Arg(AEntries, commands);
        _w.EndArgs();
    }

    private static int SmmuCommandClassOf(SmmuOpcode op) => op switch
    {
        SmmuOpcode.CfgiSte or SmmuOpcode.CfgiSteRange or SmmuOpcode.CfgiCd or SmmuOpcode.CfgiCdAll or SmmuOpcode.PrefetchConfig => 0,
        SmmuOpcode.AtcInv or SmmuOpcode.PriResp or SmmuOpcode.Resume => 2,
        SmmuOpcode.CmdSync => 3,
        _ => 1,
    };
}
