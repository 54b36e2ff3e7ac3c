using System.Runtime.CompilerServices;
using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Iommu.Caches;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Iommu.Walk;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Iommu;

/// <summary>
/// The VT-d remapping unit (VT-d spec §3, scalable mode): composes the translation pipeline, in its
/// own clock, out of the spec's blocks: a bounded input queue (back-pressure to the root complex),
/// the <see cref="Caches.ContextCache"/> and <see cref="Caches.PasidCache"/> (table fetches through the
/// memory model on a miss), the <see cref="Caches.Iotlb"/> looked up in <c>lookupCycles</c>, misses
/// handed to the <see cref="PageWalker"/> (which uses the <see cref="PagingStructureCaches"/> and fills
/// the IOTLB), permission checks, fault recording (<see cref="FaultLog"/>) and the
/// <see cref="PageRequestQueue"/>; the <see cref="InvalidationQueue"/> with its
/// <see cref="InvalidationExecutor"/> edits those caches. Statistics-only observers hang off
/// <see cref="Observer"/>. The tables it reads live in simulated memory (<see cref="Tables"/>).
/// See docs/vtd.md for the block map.
/// </summary>
public sealed partial class IommuUnit : IEventHandler, IWalkCompletion, ITranslationAgent, IResettable
{
    private const int KindLookup = 1;
    private const int KindIotlbStage = 2;
    private const int KindFaultRecorded = 3;
    private const int KindRootEntryRead = 4;
    private const int KindContextEntryRead = 5;
    private const int KindPasidDirectoryRead = 6;
    private const int KindPasidEntryRead = 7;

    private readonly IommuOptions _options;
    private readonly Scheduler _sched;
    private readonly PhysicalMemory _mem;
    private readonly MemoryTimingModel _timing;
    private readonly PageWalker _walker;
    private readonly InvalidationExecutor _executor;
    private readonly StaleTranslationTracker _stale = new();
    private bool _staleAttached;
    private HardwareObserver? _external;
    private readonly InputQueue _input;

    public IommuUnit(IommuOptions options, Scheduler sched, PhysicalMemory mem, FrameAllocator frames,
        MemoryTimingModel timing, SimRandom rng)
    {
        _options = options;
        _sched = sched;
        _mem = mem;
        _timing = timing;
        Clock = new ClockDomain("iommu", options.ClockMHz);
        Tables = new TranslationTables(mem, frames);
        Iotlb = new Iotlb(options.Iotlb, rng.Fork("iotlb"));
        ContextCache = new ContextCache(options.ContextCache.Entries, mem, timing, Tables);
        PasidCache = new PasidCache(options.PasidCache.Entries, mem, timing);
        WalkCaches = new PagingStructureCaches(options.WalkCaches);
        _walker = new PageWalker(options.Walkers, WalkCaches, Iotlb, mem, timing, sched, Clock,
            options.WalkCaches.Enabled ? options.WalkCaches.LookupCycles : 0, this);
        Invalidation = new InvalidationQueue(options.Invalidation, sched, Clock);
        _executor = new InvalidationExecutor(options.Invalidation, ContextCache, PasidCache, Iotlb, WalkCaches);
        Invalidation.Attach(_executor);
        Faults = new FaultLog();
        PageRequests = new PageRequestQueue();
        TranslationLatency = new LatencyHistogram("translation");
        _input = new InputQueue(options.InputQueueDepth, options.ContextLookupCycles + options.Iotlb.LookupCycles, Clock);
    }

    public IommuOptions Options => _options;
    public ClockDomain Clock { get; }
    public TranslationTables Tables { get; }
    public Iotlb Iotlb { get; }
    public ContextCache ContextCache { get; }
    public PasidCache PasidCache { get; }
    /// <summary>The paging-structure caches (config key <c>walkCaches</c>).</summary>
    public PagingStructureCaches WalkCaches { get; }
    public InvalidationQueue Invalidation { get; }
    /// <summary>Fault recording (non-recoverable faults).</summary>
    public FaultLog Faults { get; }
    /// <summary>The page request queue (PRI page requests for software).</summary>
    public PageRequestQueue PageRequests { get; }
    public LatencyHistogram TranslationLatency { get; }
    public LatencyHistogram WalkReadsPerWalk => _walker.WalkReads;
    public LatencyHistogram WalkLatency => _walker.WalkLatency;

    public ITranslationSink? Sink { get; set; }

    public long WalkCount => _walker.Count;
    public long WalksCoalesced => _walker.Coalesced;
    public long WalkMemoryReads => _walker.MemoryReads;
    public long WalkStage1Reads => _walker.Stage1Reads;
    public long WalkStage2Reads => _walker.Stage2Reads;
    public long WalksQueued => _walker.Queued;
    /// <summary>Root/context/PASID-directory/PASID-entry reads on context- and PASID-cache misses.</summary>
    public long TableFetchReads => ContextCache.FetchReads + PasidCache.FetchReads;
    public long Translations { get; private set; }
    public long PassThroughTranslations { get; private set; }
    public long InputQueueFullRefusals => _input.FullRefusals;
    /// <summary>Translations served from a cached entry of a page unmapped but not yet invalidated (lazy mode).</summary>
    public long StaleTranslationsUsed => _stale.Used;
    public int InFlight => _input.InFlight;
    public long DeviceTlbInvalidations => _executor.DeviceTlbInvalidations;

    /// <summary>Hooks of the pipeline, walkers and invalidation queue (tracing and the stale-translation tracker); null when nobody listens.</summary>
    public HardwareObserver? Observer { get; private set; }

    /// <summary>Sets the outside observers (tracing); the IOMMU adds its own bookkeeping observers to them.</summary>
    internal void SetObserver(HardwareObserver? external)
    {
        _external = external;
        Observer = ObserverFanout.Combine(_staleAttached ? _stale : null, _external);
        _walker.Observer = Observer;
        Invalidation.Observer = Observer;
    }

    public void RegisterEndpoint(ushort rid, IAtsEndpoint endpoint) => _executor.RegisterEndpoint(rid, endpoint);

    // ---- request path -------------------------------------------------------------------

    /// <summary>Accepts a TLP into the input queue, or refuses it (queue full): the sink then gets
    /// <see cref="ITranslationSink.OnInputQueueSpace"/> when a slot frees.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryAccept(Tlp tlp)
    {
        if (!_input.TryEnter(_sched.Now, out long lookupDone)) return false;
        tlp.Vtd.ArrivalPs = _sched.Now;
        if (tlp.IsTranslationRequest) AtsTranslationRequests++;
        Observer?.OnIommuAccepted(tlp, lookupDone);
        _sched.ScheduleAt(lookupDone, this, KindLookup, 0, tlp);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnEvent(int kind, long arg, object? payload)
    {
        var tlp = (Tlp)payload!;
        switch (kind)
        {
            case KindLookup: LookupStage(tlp); break;
            case KindIotlbStage: IotlbStage(tlp); break;
            case KindFaultRecorded: Finish(tlp); break;
            default: OnFetchRead(kind, tlp); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void LookupStage(Tlp tlp)
    {
        if (ContextCache.TryGet(tlp.RequesterId, out var ctx)) AfterContext(tlp, ctx, fetched: false);
        else FetchContext(tlp);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void IotlbStage(Tlp tlp)
    {
        ref readonly var pte = ref tlp.Vtd.Context;
        if (pte.Pgtt == Pgtt.PassThrough)
        {
            PassThroughTranslations++;
            tlp.PhysicalAddress = tlp.Address;
            Finish(tlp);
            return;
        }
        if (Iotlb.Lookup(pte.DomainId, tlp.Vtd.EffectivePasid, tlp.Address, out var hit))
        {
            tlp.IotlbHit = true;
            CompleteFromHit(tlp, hit);
            return;
        }
        Observer?.OnIotlbMiss(tlp);
        _walker.Submit(tlp);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void CompleteFromHit(Tlp tlp, in IotlbHit hit)
    {
        if ((tlp.Access & ~hit.Access) != 0) { Fault(tlp, FaultReason.Permission); return; }
        Observer?.OnTranslationFromIotlb(tlp);
        if (tlp.IsWrite && !hit.Dirty && tlp.Vtd.Context.DirtyTracking && hit.LeafEntryAddress != 0)
        {
            // Hardware sets the D bit on the first write through a clean cached translation.
            AccessedDirtyFlags.SetSecondStageDirty(_mem, hit.LeafEntryAddress);
            Iotlb.MarkDirty(hit.Index);
        }
        tlp.PhysicalAddress = hit.PhysicalAddress;
        Finish(tlp);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    bool IWalkCompletion.TryCompleteFromIotlb(Tlp tlp)
    {
        // Filled while this miss waited for a walker: served without a walk (already counted as a miss).
        if (!Iotlb.Refetch(tlp.Vtd.Context.DomainId, tlp.Vtd.EffectivePasid, tlp.Address, out var hit)) return false;
        CompleteFromHit(tlp, hit);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void IWalkCompletion.OnWalkDone(Tlp tlp)
    {
        if (tlp.Faulted) Fault(tlp, tlp.FaultReason);
        else Finish(tlp);
    }

    /// <summary>Records the fault (taking <c>faultRecordCycles</c>) and then completes the request as
    /// failed. A failed ATS translation request is not a fault: the completion says "no access" and the
    /// device may ask for the page with PRI.</summary>
    private void Fault(Tlp tlp, FaultReason reason)
    {
        tlp.Faulted = true;
        tlp.FaultReason = reason;
        if (tlp.IsTranslationRequest)
        {
            AtsTranslationFailures++;
            Finish(tlp);
            return;
        }
        Observer?.OnFault(tlp, reason);
        Faults.Record(tlp, reason, _sched.Now);
        if (_options.FaultRecordCycles == 0) Finish(tlp);
        else _sched.ScheduleAt(Clock.EdgeAfter(_sched.Now, _options.FaultRecordCycles), this, KindFaultRecorded, 0, tlp);
    }

    /// <summary>A PRI page request arrived: queue it for software (the uAPI fault queue reads it).</summary>
    public void RecordPageRequest(Tlp tlp)
    {
        PageRequests.Receive(tlp, _sched.Now);
        Observer?.OnPageRequest(tlp);
        PageRequestArrived?.Invoke();
    }

    /// <summary>Raised when a page request is queued (software's interrupt).</summary>
    public event Action? PageRequestArrived;

    public long AtsTranslationFailures { get; private set; }
    public long AtsTranslationRequests { get; private set; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Finish(Tlp tlp)
    {
        Translations++;
        TranslationLatency.Record(_sched.Now - tlp.Vtd.ArrivalPs);
        Observer?.OnTranslated(tlp);
        _input.Leave();
        Sink?.OnTranslated(tlp);
        if (_input.TakeSpaceSignal()) Sink?.OnInputQueueSpace();
    }

    // ---- software-visible helpers ---------------------------------------------------------

    /// <summary>
    /// The uAPI layer tells the model that a mapping was removed from the tables but may still
    /// be cached (lazy invalidation); hits on it count as stale until an invalidation covers it.
    /// Bookkeeping for results only: it does not change what the hardware does.
    /// </summary>
    public void NoteUnmappedPendingInvalidation(ushort did, ulong iova, ulong bytes)
    {
        if (!_staleAttached)
        {
            _staleAttached = true;
            SetObserver(_external);
        }
        _stale.Note(did, iova, bytes);
    }

    public void Reset()
    {
        Iotlb.Reset();
        ContextCache.Reset();
        PasidCache.Reset();
        WalkCaches.Reset();
        _walker.Reset();
        Invalidation.Reset();
        _executor.Reset();
        Faults.ResetCounters();
        PageRequests.ResetCounters();
        TranslationLatency.Reset();
        _stale.Reset();
        _input.Reset();
        Translations = PassThroughTranslations = 0;
        AtsTranslationFailures = AtsTranslationRequests = 0;
    }
}
