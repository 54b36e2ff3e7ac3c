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
using IommuSim.Hardware.Walk;

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
    private const int KindStage1Read = WalkEventKinds.Stage1Read;
    private const int KindStage2Read = WalkEventKinds.Stage2Read;

    private readonly PagingStructureCaches _caches;
    private readonly Iotlb _iotlb;
    private readonly PhysicalMemory _mem;
    private readonly int _walkCacheLookupCycles;
    private readonly WalkerSlots<PageWalk, Tlp, Ops> _slots;

    public PageWalker(WalkerOptions options, PagingStructureCaches caches, Iotlb iotlb, PhysicalMemory mem, MemoryTimingModel timing,
        Scheduler sched, ClockDomain clock, int walkCacheLookupCycles, IWalkCompletion owner)
    {
        _caches = caches;
        _iotlb = iotlb;
        _mem = mem;
        _walkCacheLookupCycles = walkCacheLookupCycles;
        _slots = new WalkerSlots<PageWalk, Tlp, Ops>(options.Count, options.Coalesce, mem, timing, sched, clock, this, "");
        _slots.Ops = new Ops(this, owner);
    }

    public long Count => _slots.Count;
    public long Coalesced => _slots.Coalesced;
    public long MemoryReads => Stage1Reads + Stage2Reads;
    public long Stage1Reads => _slots.Stage1Reads;
    public long Stage2Reads => _slots.Stage2Reads;
    public long Queued => _slots.Queued;
    public int ActiveWalks => _slots.ActiveCount;
    /// <summary>Hooks, set by the IOMMU; null when nobody listens.</summary>
    public HardwareObserver? Observer { get => _slots.Observer; set => _slots.Observer = value; }
    /// <summary>Table-entry reads per walk.</summary>
    public LatencyHistogram WalkReads => _slots.WalkReads;
    /// <summary>Walk duration (ps).</summary>
    public LatencyHistogram WalkLatency => _slots.WalkLatency;

    /// <summary>Handles an IOTLB miss: join, start or queue a walk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Submit(Tlp tlp) => _slots.Submit(tlp);

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
        _slots.Finish(w, rights, w.Stage1Reads + w.Stage2Reads);
    }

    private void Fault(PageWalk w, FaultReason reason)
    {
        w.Faulted = true;
        w.FaultReason = reason;
        _slots.Finish(w, Access.None, w.Stage1Reads + w.Stage2Reads);
    }

    public void Reset() => _slots.Reset();

    /// <summary>The VT-d side of the walker slots: requests are TLPs linked through their VT-d state.</summary>
    private readonly struct Ops(PageWalker walker, IWalkCompletion owner) : IWalkerOps<PageWalk, Tlp>
    {
        public Tlp? GetNext(Tlp r) => r.Vtd.Next;
        public void SetNext(Tlp r, Tlp? next) => r.Vtd.Next = next;
        public bool IsWrite(Tlp r) => r.IsWrite;
        public bool Covers(PageWalk w, Tlp r) => w.Covers(r.Vtd.Context.DomainId, r.Vtd.EffectivePasid, r.Address);
        public void Init(PageWalk w, Tlp first) => w.Init(first);
        public void Begin(PageWalk w) => walker.Begin(w);
        public void OnStarted(HardwareObserver o, int slot, Tlp r) => o.OnWalkStarted(slot, r);
        public void OnJoined(HardwareObserver o, int slot, Tlp r) => o.OnWalkJoined(slot, r);
        public void Done(Tlp r) => owner.OnWalkDone(r);
        public bool TryCompleteFromTlb(Tlp r) => owner.TryCompleteFromIotlb(r);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Deliver(PageWalk w, Tlp t, Access rights, int reads, bool first)
        {
            const ulong mask = 0xFFFUL;
            if (first) t.WalkReads = reads;
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
        }
    }
}
