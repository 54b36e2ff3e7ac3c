using System.Runtime.CompilerServices;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Iommu.Caches;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Iommu.Walk;

/// <summary>Receives finished walks (the IOMMU pipeline).</summary>
internal interface IWalkCompletion
{
    /// <summary>A request whose walk finished (translated or faulted); called once per waiter.</summary>
    void OnWalkDone(Tlp tlp);
    /// <summary>Called before a queued miss starts its walk: true when the IOTLB now holds it (filled meanwhile).</summary>
    bool TryCompleteFromIotlb(Tlp tlp);
}

/// <summary>
/// The page walker (VT-d spec §3.6 first-stage, §3.7 second-stage and §3.8 nested translation): a fixed number of walkers, each running one 1-D or 2-D walk as a chain of
/// memory reads (one event per table-entry read, latency from the memory model). Misses for a page
/// already being walked join that walk when coalescing is on; misses beyond the walker count wait
/// in FIFO order. Uses the paging-structure caches and the nested TLB to skip reads.
/// A cold walk with caches off reads n entries (n-level single stage) or (n+1)(m+1)−1 (nested).
/// A finished walk fills the paging-structure caches on the way down and the IOTLB itself
/// (setting the second-stage D bit for a write, <see cref="AccessedDirtyFlags"/>) before it hands
/// each waiting request back to the pipeline.
/// </summary>
internal sealed partial class PageWalker : IEventHandler, IResettable
{
    private const int KindStage1Read = 1;
    private const int KindStage2Read = 2;
    private const int KindIssue = 3;

    private readonly WalkerOptions _options;
    private readonly PagingStructureCaches _caches;
    private readonly Iotlb _iotlb;
    private readonly PhysicalMemory _mem;
    private readonly MemoryTimingModel _timing;
    private readonly Scheduler _sched;
    private readonly ClockDomain _clock;
    private readonly int _walkCacheLookupCycles;
    private readonly IWalkCompletion _owner;
    private readonly PageWalk?[] _active;
    private readonly Stack<PageWalk> _pool = new();
    private Tlp? _queueHead, _queueTail;
    private int _activeCount;

    public PageWalker(WalkerOptions options, PagingStructureCaches caches, Iotlb iotlb, PhysicalMemory mem, MemoryTimingModel timing,
        Scheduler sched, ClockDomain clock, int walkCacheLookupCycles, IWalkCompletion owner)
    {
        _options = options;
        _caches = caches;
        _iotlb = iotlb;
        _mem = mem;
        _timing = timing;
        _sched = sched;
        _clock = clock;
        _walkCacheLookupCycles = walkCacheLookupCycles;
        _owner = owner;
        _active = new PageWalk?[options.Count];
        for (int i = 0; i < options.Count; i++) _pool.Push(new PageWalk());
        WalkReads = new LatencyHistogram("walkReads");
        WalkLatency = new LatencyHistogram("walk");
    }

    public long Count { get; private set; }
    public long Coalesced { get; private set; }
    public long MemoryReads => Stage1Reads + Stage2Reads;
    public long Stage1Reads { get; private set; }
    public long Stage2Reads { get; private set; }
    public long Queued { get; private set; }
    public int ActiveWalks => _activeCount;
    /// <summary>Hooks, set by the IOMMU; null when nobody listens.</summary>
    public HardwareObserver? Observer;
    /// <summary>Table-entry reads per walk.</summary>
    public LatencyHistogram WalkReads { get; }
    /// <summary>Walk duration (ps).</summary>
    public LatencyHistogram WalkLatency { get; }

    /// <summary>Handles an IOTLB miss: join, start or queue a walk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Submit(Tlp tlp)
    {
        if (_options.Coalesce && TryJoin(tlp)) return;
        if (_activeCount < _active.Length) Start(tlp);
        else
        {
            Queued++;
            tlp.Vtd.Next = null;
            if (_queueTail is null) _queueHead = _queueTail = tlp;
            else { _queueTail.Vtd.Next = tlp; _queueTail = tlp; }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool TryJoin(Tlp tlp)
    {
        for (int i = 0; i < _active.Length; i++)
        {
            var w = _active[i];
            if (w is not null && w.Covers(tlp.Vtd.Context.DomainId, tlp.Vtd.EffectivePasid, tlp.Address))
            {
                Coalesced++;
                w.AddWaiter(tlp);
                Observer?.OnWalkJoined(i, tlp);
                return true;
            }
        }
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Start(Tlp tlp)
    {
        var w = _pool.Pop();
        w.Init(tlp);
        w.StartPs = _sched.Now;
        for (int i = 0; i < _active.Length; i++)
        {
            if (_active[i] is null) { _active[i] = w; w.Slot = i; break; }
        }
        _activeCount++;
        Count++;
        Observer?.OnWalkStarted(w.Slot, tlp);
        Begin(w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Complete(PageWalk w)
    {
        // The cached translation is linear over the smaller of the two leaves.
        PageSize size = PageSize.Size1G;
        Access rights = Access.ReadWrite;
        if (w.HasS1Leaf) { size = (PageSize)Math.Min((int)size, (int)w.S1Size); rights &= w.S1Rights; }
        if (w.HasS2Leaf) { size = (PageSize)Math.Min((int)size, (int)w.S2Size); rights &= w.S2Rights; }
        ulong mask = size.Bytes() - 1;
        ulong outBase = (w.FinalHpa & ~0xFFFUL) - (w.Iova & mask & ~0xFFFUL);
        bool dirty = false;
        if (w.Context.DirtyTracking && w.HasS2Leaf && w.AnyWrite && (rights & Access.Write) != 0)
        {
            AccessedDirtyFlags.SetSecondStageDirty(_mem, w.S2LeafEntryAddress);
            dirty = true;
        }
        _iotlb.Insert(w.Did, w.Pasid, w.Iova, size, outBase, rights, w.HasS2Leaf ? w.S2LeafEntryAddress : 0, dirty);
        Finish(w, rights);
    }

    private void Fault(PageWalk w, FaultReason reason)
    {
        w.Faulted = true;
        w.FaultReason = reason;
        Finish(w, Access.None);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Finish(PageWalk w, Access rights)
    {
        int reads = w.Stage1Reads + w.Stage2Reads;
        WalkReads.Record(reads);
        WalkLatency.Record(_sched.Now - w.StartPs);
        Observer?.OnWalkFinished(w.Slot, w.StartPs, reads, w.Faulted);
        for (int i = 0; i < _active.Length; i++)
        {
            if (ReferenceEquals(_active[i], w)) { _active[i] = null; break; }
        }
        _activeCount--;
        ulong mask = 0xFFFUL;
        Tlp? t = w.Head;
        bool first = true;
        while (t is not null)
        {
            Tlp? next = t.Vtd.Next;
            t.Vtd.Next = null;
            if (first) { t.WalkReads = reads; first = false; }
            if (w.Faulted)
            {
                t.Faulted = true;
                t.FaultReason = w.FaultReason;
            }
            else if ((t.Access & ~rights) != 0)
            {
                t.Faulted = true;
                t.FaultReason = FaultReason.Permission;
            }
            else t.PhysicalAddress = (w.FinalHpa & ~mask) + ((t.Address & ~mask) - (w.Iova & ~mask)) + (t.Address & mask);
            _owner.OnWalkDone(t);
            t = next;
        }
        w.Head = w.Tail = null;
        _pool.Push(w);
        StartQueued();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void StartQueued()
    {
        while (_queueHead is not null && _activeCount < _active.Length)
        {
            Tlp t = _queueHead;
            _queueHead = t.Vtd.Next;
            if (_queueHead is null) _queueTail = null;
            t.Vtd.Next = null;
            if (_owner.TryCompleteFromIotlb(t)) continue;
            if (_options.Coalesce && TryJoin(t)) continue;
            Start(t);
        }
    }

    public void Reset()
    {
        Count = Coalesced = Stage1Reads = Stage2Reads = Queued = 0;
        WalkReads.Reset();
        WalkLatency.Reset();
    }
}
