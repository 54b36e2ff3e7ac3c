using System.Runtime.CompilerServices;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Walk;

/// <summary>
/// The walker-slot bookkeeping both table walkers share (VT-d page walker, SMMUv3 table-walk unit):
/// a fixed number of walkers, a FIFO of misses waiting for a free one, coalescing of a miss into a
/// walk of the same page in flight, the pool of walk objects, the walk counters and histograms, and
/// the issue of one table-entry read (functionally at once, timed by the memory model, after the
/// walk-cache lookup as an event). The table formats and walk steps stay in each walker; they reach
/// this class through <typeparamref name="TOps"/>, a struct, so the JIT compiles this class for each
/// walker and calls them directly. Allocates nothing after construction.
/// </summary>
internal sealed class WalkerSlots<TWalk, TRequest, TOps>
    where TWalk : TableWalk<TRequest>, new()
    where TRequest : class
    where TOps : struct, IWalkerOps<TWalk, TRequest>
{
    /// <summary>A slot as a struct: storing a walk needs no array covariance check.</summary>
    private struct Slot { public TWalk? Walk; }

    private readonly bool _coalesce;
    private readonly PhysicalMemory _mem;
    private readonly MemoryTimingModel _timing;
    private readonly Scheduler _sched;
    private readonly ClockDomain _clock;
    private readonly IEventHandler _handler;
    private readonly Slot[] _active;
    private readonly Stack<TWalk> _pool = new();
    private TRequest? _queueHead, _queueTail;
    private TOps _ops;

    /// <param name="handler">The walker: receives the read events (<see cref="WalkEventKinds"/>), payload the walk.</param>
    public WalkerSlots(int count, bool coalesce, PhysicalMemory mem, MemoryTimingModel timing, Scheduler sched, ClockDomain clock,
        IEventHandler handler, string histogramPrefix)
    {
        _coalesce = coalesce;
        _mem = mem;
        _timing = timing;
        _sched = sched;
        _clock = clock;
        _handler = handler;
        _active = new Slot[count];
        for (int i = 0; i < count; i++) _pool.Push(new TWalk());
        WalkReads = new LatencyHistogram(histogramPrefix + "walkReads");
        WalkLatency = new LatencyHistogram(histogramPrefix + "walk");
    }

    /// <summary>Set once by the walker's constructor (the ops refer back to the walker).</summary>
    public TOps Ops { set => _ops = value; }

    public long Count;
    public long Coalesced;
    public long Queued;
    public long Stage1Reads;
    public long Stage2Reads;
    public int ActiveCount;
    /// <summary>Hooks, set by the IOMMU/SMMU; null when nobody listens.</summary>
    public HardwareObserver? Observer;
    /// <summary>Table-entry reads per walk.</summary>
    public LatencyHistogram WalkReads { get; }
    /// <summary>Walk duration (ps).</summary>
    public LatencyHistogram WalkLatency { get; }

    /// <summary>Handles a TLB miss: join a walk of the same page, start a walk, or wait for a walker.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Submit(TRequest r)
    {
        if (_coalesce && TryJoin(r)) return;
        if (ActiveCount < _active.Length) Start(r);
        else
        {
            Queued++;
            _ops.SetNext(r, null);
            if (_queueTail is null) _queueHead = _queueTail = r;
            else { _ops.SetNext(_queueTail, r); _queueTail = r; }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool TryJoin(TRequest r)
    {
        for (int i = 0; i < _active.Length; i++)
        {
            var w = _active[i].Walk;
            if (w is not null && _ops.Covers(w, r))
            {
                Coalesced++;
                _ops.SetNext(r, null);
                if (w.Tail is null) w.Head = w.Tail = r;
                else { _ops.SetNext(w.Tail, r); w.Tail = r; }
                w.AnyWrite |= _ops.IsWrite(r);
                if (Observer is { } o) _ops.OnJoined(o, i, r);
                return true;
            }
        }
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Start(TRequest first)
    {
        var w = _pool.Pop();
        w.Head = w.Tail = first;
        _ops.SetNext(first, null);
        w.AnyWrite = _ops.IsWrite(first);
        _ops.Init(w, first);
        w.StartPs = _sched.Now;
        for (int i = 0; i < _active.Length; i++)
        {
            if (_active[i].Walk is null) { _active[i].Walk = w; w.Slot = i; break; }
        }
        ActiveCount++;
        Count++;
        if (Observer is { } o) _ops.OnStarted(o, w.Slot, first);
        _ops.Begin(w);
    }

    /// <summary>
    /// Ends walk <paramref name="w"/> after <paramref name="reads"/> table-entry reads: records it, frees its
    /// walker, hands every waiter its outcome (<paramref name="rights"/>: what the translation allows) and
    /// starts queued misses on the free walkers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Finish(TWalk w, Access rights, int reads)
    {
        WalkReads.Record(reads);
        WalkLatency.Record(_sched.Now - w.StartPs);
        Observer?.OnWalkFinished(w.Slot, w.StartPs, reads, w.Faulted);
        for (int i = 0; i < _active.Length; i++)
        {
            if (ReferenceEquals(_active[i].Walk, w)) { _active[i].Walk = null; break; }
        }
        ActiveCount--;
        TRequest? t = w.Head;
        bool first = true;
        while (t is not null)
        {
            TRequest? next = _ops.GetNext(t);
            _ops.SetNext(t, null);
            _ops.Deliver(w, t, rights, reads, first);
            first = false;
            _ops.Done(t);
            t = next;
        }
        w.Head = w.Tail = null;
        _pool.Push(w);
        StartQueued();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void StartQueued()
    {
        while (_queueHead is not null && ActiveCount < _active.Length)
        {
            TRequest t = _queueHead;
            _queueHead = _ops.GetNext(t);
            if (_queueHead is null) _queueTail = null;
            _ops.SetNext(t, null);
            if (_ops.TryCompleteFromTlb(t)) continue;
            Submit(t);
        }
    }

    /// <summary>
    /// Reads one table entry of <paramref name="kind"/> (functionally now) and schedules its arrival after the memory
    /// latency; with <paramref name="extraCycles"/> (a walk-cache lookup first) the read goes to memory when they are over.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void IssueRead(TWalk w, ulong entryAddress, int kind, int extraCycles)
    {
        w.PendingAddress = entryAddress;
        w.PendingValue = _mem.ReadU64(entryAddress);
        if (extraCycles > 0)
        {
            // An event then, so the read takes DRAM bandwidth at that time instead of reserving it ahead of
            // requests issued in between.
            w.PendingKind = kind;
            _sched.ScheduleAt(_clock.EdgeAfter(_sched.Now, extraCycles), _handler, WalkEventKinds.Issue, 0, w);
            return;
        }
        Issue(w, kind);
    }

    /// <summary>The read a walk-cache lookup held back (event <see cref="WalkEventKinds.Issue"/>) goes to memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void IssuePending(TWalk w) => Issue(w, w.PendingKind);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Issue(TWalk w, int kind)
    {
        long now = _sched.Now, done = _timing.WalkRead(now);
        if (Observer is { } o)
        {
            bool s1 = kind == WalkEventKinds.Stage1Read;
            o.OnWalkRead(w.Slot, s1 ? TableStage.First : TableStage.Second, s1 ? w.S1Level : w.S2Level, w.PendingAddress, now, done);
        }
        _sched.ScheduleAt(done, _handler, kind, 0, w);
    }

    public void Reset()
    {
        Count = Coalesced = Queued = Stage1Reads = Stage2Reads = 0;
        WalkReads.Reset();
        WalkLatency.Reset();
    }
}
