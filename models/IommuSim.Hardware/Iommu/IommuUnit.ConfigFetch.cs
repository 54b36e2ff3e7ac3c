using System.Runtime.CompilerServices;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Iommu;

/// <summary>
/// Context- and PASID-cache misses (VT-d spec §3.4.3: root entry → context entry → PASID-directory
/// entry → PASID-table entry). Each dependent read is its own event, issued to the memory model when
/// the previous one has returned, so it takes memory bandwidth at the time it is really issued (a
/// chain computed up front would reserve the memory for the future and delay unrelated requests).
/// Requests that miss on an entry already being fetched wait for that fetch instead of issuing their
/// own reads (assumption: the fetch unit coalesces, as the walker does for pages).
/// </summary>
public sealed partial class IommuUnit
{
    private readonly Dictionary<ushort, Tlp> _contextFetches = new(64);
    private readonly Dictionary<ulong, Tlp> _pasidFetches = new(64);

    private static ulong PasidKey(ushort rid, uint pasid) => ((ulong)rid << 32) | pasid;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AfterContext(Tlp tlp, in ContextEntry ctx, bool fetched)
    {
        if (!ctx.Present) { Fault(tlp, FaultReason.ContextNotPresent); return; }
        if (tlp.HasPasid && !ctx.PasidEnable) { Fault(tlp, FaultReason.PasidNotSupported); return; }
        uint pasid = tlp.HasPasid ? tlp.Pasid : ctx.RidPasid;
        tlp.Vtd.EffectivePasid = pasid;
        if (PasidCache.TryGet(tlp.RequesterId, pasid, out var pte)) AfterPasid(tlp, pte, fetched);
        else
        {
            tlp.Vtd.ContextEntry = ctx;
            FetchPasid(tlp, pasid);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void AfterPasid(Tlp tlp, in PasidTableEntry pte, bool fetched)
    {
        if (!pte.Present) { Fault(tlp, FaultReason.PasidNotValid); return; }
        tlp.Vtd.Context = pte;
        // After a fetch the IOTLB lookup starts when the entry is in; otherwise it overlapped the cache lookups.
        if (fetched) _sched.ScheduleAt(Clock.EdgeAfter(_sched.Now, _options.Iotlb.LookupCycles), this, KindIotlbStage, 0, tlp);
        else IotlbStage(tlp);
    }

    private void FetchContext(Tlp tlp)
    {
        if (_contextFetches.TryGetValue(tlp.RequesterId, out var leader)) { Enqueue(leader, tlp); return; }
        _contextFetches.Add(tlp.RequesterId, tlp);
        _sched.ScheduleAt(_timing.WalkRead(_sched.Now), this, KindRootEntryRead, 0, tlp);
    }

    private void FetchPasid(Tlp tlp, uint pasid)
    {
        ulong key = PasidKey(tlp.RequesterId, pasid);
        if (_pasidFetches.TryGetValue(key, out var leader)) { Enqueue(leader, tlp); return; }
        _pasidFetches.Add(key, tlp);
        _sched.ScheduleAt(_timing.WalkRead(_sched.Now), this, KindPasidDirectoryRead, 0, tlp);
    }

    /// <summary>One read of a fetch has returned: use it, then issue the next read or finish the fetch.</summary>
    private void OnFetchRead(int kind, Tlp leader)
    {
        ushort rid = leader.RequesterId;
        switch (kind)
        {
            case KindRootEntryRead:
                if (ContextCache.ReadRootEntry(rid) is ulong ce)
                {
                    leader.Vtd.FetchAddress = ce;
                    _sched.ScheduleAt(_timing.WalkRead(_sched.Now), this, KindContextEntryRead, 0, leader);
                }
                else CompleteContextFetch(leader, default);
                break;
            case KindContextEntryRead:
                CompleteContextFetch(leader, ContextCache.ReadContextEntry(rid, leader.Vtd.FetchAddress));
                break;
            case KindPasidDirectoryRead:
                if (PasidCache.ReadDirectoryEntry(leader.Vtd.ContextEntry, leader.Vtd.EffectivePasid) is ulong pe)
                {
                    leader.Vtd.FetchAddress = pe;
                    _sched.ScheduleAt(_timing.WalkRead(_sched.Now), this, KindPasidEntryRead, 0, leader);
                }
                else CompletePasidFetch(leader, default);
                break;
            default: // KindPasidEntryRead
                CompletePasidFetch(leader, PasidCache.ReadTableEntry(rid, leader.Vtd.EffectivePasid, leader.Vtd.FetchAddress));
                break;
        }
    }

    private void CompleteContextFetch(Tlp leader, ContextEntry ctx)
    {
        _contextFetches.Remove(leader.RequesterId);
        var w = Detach(leader);
        AfterContext(leader, ctx, fetched: true);
        while (w is not null)
        {
            var next = w.Vtd.Next;
            w.Vtd.Next = null;
            AfterContext(w, ctx, fetched: true);
            w = next;
        }
    }

    private void CompletePasidFetch(Tlp leader, PasidTableEntry pte)
    {
        _pasidFetches.Remove(PasidKey(leader.RequesterId, leader.Vtd.EffectivePasid));
        var w = Detach(leader);
        AfterPasid(leader, pte, fetched: true);
        while (w is not null)
        {
            var next = w.Vtd.Next;
            w.Vtd.Next = null;
            AfterPasid(w, pte, fetched: true);
            w = next;
        }
    }

    /// <summary>Appends <paramref name="waiter"/> to the leader's wait list (first come, first served).</summary>
    private static void Enqueue(Tlp leader, Tlp waiter)
    {
        var t = leader;
        while (t.Vtd.Next is not null) t = t.Vtd.Next;
        t.Vtd.Next = waiter;
    }

    private static Tlp? Detach(Tlp leader)
    {
        var w = leader.Vtd.Next;
        leader.Vtd.Next = null;
        return w;
    }
}
