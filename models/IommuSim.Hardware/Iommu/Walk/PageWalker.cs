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
internal sealed class PageWalker : IEventHandler, IResettable
{
    private const int KindStage1Read = 1;
    private const int KindStage2Read = 2;

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
    private void Begin(PageWalk w)
    {
        var ctx = w.Context;
        switch (ctx.Pgtt)
        {
            case Pgtt.SecondStage:
                if (w.Iova > MaxInput(ctx.SecondStageLevels)) { Fault(w, FaultReason.AddressWidth); return; }
                BeginStage2(w, Stage2Purpose.Final, w.Iova);
                return;
            case Pgtt.FirstStage:
            case Pgtt.Nested:
            {
                if (w.Iova > MaxInput(ctx.FirstStageLevels)) { Fault(w, FaultReason.AddressWidth); return; }
                var (level, table) = _caches.Lookup(TableStage.First, w.Did, w.Pasid, w.Iova, ctx.FirstStageLevels, ctx.FirstStageTable);
                w.S1Level = level;
                w.S1TableGpa = table;
                if (ctx.Pgtt == Pgtt.FirstStage)
                {
                    w.S1TableHpa = table;
                    IssueStage1Read(w, _walkCacheLookupCycles);
                }
                else ResolveStage1Table(w, _walkCacheLookupCycles);
                return;
            }
            default:
                // Pass-through never reaches the walker; anything else is a malformed PASID entry.
                Fault(w, FaultReason.PasidNotValid);
                return;
        }
    }

    private static ulong MaxInput(int levels) => (1UL << PageTableFormat.AddressWidth(levels)) - 1;

    /// <summary>Nested: find the host-physical address of the current stage-1 table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ResolveStage1Table(PageWalk w, int extraCycles)
    {
        if (_caches.LookupNested(w.Did, w.S1TableGpa, out var hit))
        {
            w.S1TableHpa = (hit.HpaPage << 12) | (w.S1TableGpa & 0xFFF);
            IssueStage1Read(w, extraCycles);
        }
        else BeginStage2(w, Stage2Purpose.Stage1Table, w.S1TableGpa, extraCycles);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BeginStage2(PageWalk w, Stage2Purpose purpose, ulong input, int extraCycles = 0)
    {
        if (input > MaxInput(w.Context.SecondStageLevels)) { Fault(w, FaultReason.AddressWidth); return; }
        w.Purpose = purpose;
        w.S2Input = input;
        w.S2Rights = Access.ReadWrite;
        var (level, table) = _caches.Lookup(TableStage.Second, w.Did, 0, input, w.Context.SecondStageLevels, w.Context.SecondStageTable);
        w.S2Level = level;
        w.S2Table = table;
        IssueStage2Read(w, extraCycles + _walkCacheLookupCycles);
    }

    private void IssueStage1Read(PageWalk w, int extraCycles = 0)
        => IssueRead(w, w.S1TableHpa + 8UL * (ulong)PageTableFormat.IndexAt(w.Iova, w.S1Level), KindStage1Read, extraCycles);

    private void IssueStage2Read(PageWalk w, int extraCycles = 0)
        => IssueRead(w, w.S2Table + 8UL * (ulong)PageTableFormat.IndexAt(w.S2Input, w.S2Level), KindStage2Read, extraCycles);

    /// <summary>Reads one table entry (functionally now) and schedules its arrival after the memory latency.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void IssueRead(PageWalk w, ulong entryAddress, int kind, int extraCycles)
    {
        w.PendingAddress = entryAddress;
        w.PendingValue = _mem.ReadU64(entryAddress);
        long issue = extraCycles > 0 ? _clock.EdgeAfter(_sched.Now, extraCycles) : _sched.Now;
        long done = _timing.WalkRead(issue);
        if (Observer is { } o)
        {
            bool s1 = kind == KindStage1Read;
            o.OnWalkRead(w.Slot, s1 ? TableStage.First : TableStage.Second, s1 ? w.S1Level : w.S2Level, entryAddress, issue, done);
        }
        _sched.ScheduleAt(done, this, kind, 0, w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnEvent(int kind, long arg, object? payload)
    {
        var w = (PageWalk)payload!;
        if (kind == KindStage1Read) OnStage1Entry(w);
        else OnStage2Entry(w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void OnStage1Entry(PageWalk w)
    {
        w.Stage1Reads++;
        Stage1Reads++;
        ulong e = w.PendingValue;
        if (!PageTableFormat.IsPresent(TableStage.First, e)) { Fault(w, FaultReason.FirstStageNotPresent); return; }
        if (PageTableFormat.IsLeaf(TableStage.First, e, w.S1Level))
        {
            w.S1Rights &= PageTableFormat.Permissions(TableStage.First, e);
            w.S1Size = PageSizes.FromLeafLevel(w.S1Level);
            w.HasS1Leaf = true;
            ulong mask = w.S1Size.Bytes() - 1;
            ulong outAddr = (e & PageTableFormat.AddressMask & ~mask) | (w.Iova & mask);
            if (w.Context.Pgtt == Pgtt.FirstStage)
            {
                w.FinalHpa = outAddr;
                Complete(w);
            }
            else BeginStage2(w, Stage2Purpose.Final, outAddr);
            return;
        }
        w.S1Rights &= PageTableFormat.Permissions(TableStage.First, e);
        ulong next = e & PageTableFormat.AddressMask;
        _caches.Fill(TableStage.First, w.Did, w.Pasid, w.Iova, w.S1Level, next);
        w.S1Level--;
        w.S1TableGpa = next;
        if (w.Context.Pgtt == Pgtt.FirstStage)
        {
            w.S1TableHpa = next;
            IssueStage1Read(w);
        }
        else ResolveStage1Table(w, 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void OnStage2Entry(PageWalk w)
    {
        w.Stage2Reads++;
        Stage2Reads++;
        ulong e = w.PendingValue;
        if (!PageTableFormat.IsPresent(TableStage.Second, e)) { Fault(w, FaultReason.SecondStageNotPresent); return; }
        w.S2Rights &= PageTableFormat.Permissions(TableStage.Second, e);
        if (PageTableFormat.IsLeaf(TableStage.Second, e, w.S2Level))
        {
            var size = PageSizes.FromLeafLevel(w.S2Level);
            ulong mask = size.Bytes() - 1;
            ulong hpa = (e & PageTableFormat.AddressMask & ~mask) | (w.S2Input & mask);
            if (w.Purpose == Stage2Purpose.Stage1Table)
            {
                _caches.FillNested(w.Did, w.S2Input, hpa, w.S2Rights);
                w.S1TableHpa = hpa & ~0xFFFUL;
                IssueStage1Read(w);
                return;
            }
            w.S2Size = size;
            w.HasS2Leaf = true;
            w.S2LeafEntryAddress = w.PendingAddress;
            w.FinalHpa = hpa;
            Complete(w);
            return;
        }
        ulong next = e & PageTableFormat.AddressMask;
        _caches.Fill(TableStage.Second, w.Did, 0, w.S2Input, w.S2Level, next);
        w.S2Level--;
        w.S2Table = next;
        IssueStage2Read(w);
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
