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

/// <summary>Tag of the PASID cache: requester and PASID (the DID lives in the entry).</summary>
public readonly record struct PasidCacheTag(ushort Rid, uint Pasid);

/// <summary>
/// The IOMMU translation pipeline, in its own clock: a bounded input queue (back-pressure to the
/// root complex), context- and PASID-cache lookup (table fetches through the memory model on a
/// miss), IOTLB lookup in <c>lookupCycles</c>, misses handed to the page walkers, permission
/// checks and fault recording; plus the invalidation queue that edits all those caches.
/// The table contents it reads live in simulated memory (<see cref="Tables"/>).
/// </summary>
public sealed class IommuUnit : IEventHandler, IWalkCompletion, IInvalidationTarget, IResettable
{
    private const int KindLookup = 1;
    private const int KindIotlbStage = 2;
    private const int KindFaultRecorded = 3;

    private readonly IommuOptions _options;
    private readonly Scheduler _sched;
    private readonly PhysicalMemory _mem;
    private readonly MemoryTimingModel _timing;
    private readonly PageWalker _walker;
    private readonly Dictionary<ushort, IAtsEndpoint> _endpoints = [];
    private readonly StaleTranslationTracker _stale = new();
    private bool _staleAttached;
    private HardwareObserver? _external;
    private readonly long _deviceTlbRoundTripPs;
    private long _nextLookupEdge;
    private readonly int _lookupCycles;
    private bool _sinkWaiting;

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
        ContextCache = new LruCache<ushort, ContextEntry>("contextCache", options.ContextCache.Entries);
        PasidCache = new LruCache<PasidCacheTag, PasidTableEntry>("pasidCache", options.PasidCache.Entries);
        WalkCaches = new WalkCaches(options.WalkCaches);
        _walker = new PageWalker(options.Walkers, WalkCaches, Iotlb, mem, timing, sched, Clock,
            options.WalkCaches.Enabled ? options.WalkCaches.LookupCycles : 0, this);
        Invalidation = new InvalidationQueue(options.Invalidation, sched, Clock);
        Invalidation.Attach(this);
        Faults = new FaultLog();
        TranslationLatency = new LatencyHistogram("translation");
        _deviceTlbRoundTripPs = SimTime.FromNs(options.Invalidation.DeviceTlbRoundTripNs);
        _lookupCycles = options.ContextLookupCycles + options.Iotlb.LookupCycles;
    }

    public IommuOptions Options => _options;
    public ClockDomain Clock { get; }
    public TranslationTables Tables { get; }
    public Iotlb Iotlb { get; }
    public LruCache<ushort, ContextEntry> ContextCache { get; }
    public LruCache<PasidCacheTag, PasidTableEntry> PasidCache { get; }
    public WalkCaches WalkCaches { get; }
    public InvalidationQueue Invalidation { get; }
    public FaultLog Faults { get; }
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
    public long TableFetchReads { get; private set; }
    public long Translations { get; private set; }
    public long PassThroughTranslations { get; private set; }
    public long InputQueueFullRefusals { get; private set; }
    /// <summary>Translations served from a cached entry of a page unmapped but not yet invalidated (lazy mode).</summary>
    public long StaleTranslationsUsed => _stale.Used;
    public int InFlight { get; private set; }
    public long DeviceTlbInvalidations { get; private set; }

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

    public void RegisterEndpoint(ushort rid, IAtsEndpoint endpoint) => _endpoints[rid] = endpoint;

    // ---- request path -------------------------------------------------------------------

    /// <summary>Accepts a TLP into the input queue, or refuses it (queue full): the sink then gets
    /// <see cref="ITranslationSink.OnInputQueueSpace"/> when a slot frees.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryAccept(Tlp tlp)
    {
        if (InFlight >= _options.InputQueueDepth)
        {
            InputQueueFullRefusals++;
            _sinkWaiting = true;
            return false;
        }
        InFlight++;
        tlp.IommuArrivalPs = _sched.Now;
        if (tlp.IsTranslationRequest) AtsTranslationRequests++;
        // One lookup starts per cycle (edge index arithmetic: one division per TLP); each takes the
        // context + IOTLB lookup latency.
        long start = Clock.EdgeIndexAtOrAfter(_sched.Now);
        if (start < _nextLookupEdge) start = _nextLookupEdge;
        _nextLookupEdge = start + 1;
        long lookupDone = Clock.EdgeTime(start + _lookupCycles);
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
            default: Finish(tlp); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void LookupStage(Tlp tlp)
    {
        long fetchDone = _sched.Now;
        bool fetched = false;
        if (!ContextCache.TryGet(tlp.RequesterId, out var ctx))
        {
            fetched = true;
            ctx = FetchContext(new RequesterId(tlp.RequesterId), ref fetchDone);
            if (ctx.Present) ContextCache.Insert(tlp.RequesterId, ctx);
        }
        if (!ctx.Present) { Fault(tlp, FaultReason.ContextNotPresent); return; }
        if (tlp.HasPasid && !ctx.PasidEnable) { Fault(tlp, FaultReason.PasidNotSupported); return; }
        uint pasid = tlp.HasPasid ? tlp.Pasid : ctx.RidPasid;
        tlp.EffectivePasid = pasid;
        var tag = new PasidCacheTag(tlp.RequesterId, pasid);
        if (!PasidCache.TryGet(tag, out var pte))
        {
            fetched = true;
            pte = FetchPasidEntry(ctx, pasid, ref fetchDone);
            if (pte.Present) PasidCache.Insert(tag, pte);
        }
        if (!pte.Present) { Fault(tlp, FaultReason.PasidNotValid); return; }
        tlp.Context = pte;
        if (fetched) _sched.ScheduleAt(Clock.EdgeAfter(fetchDone, _options.Iotlb.LookupCycles), this, KindIotlbStage, 0, tlp);
        else IotlbStage(tlp);
    }

    private ContextEntry FetchContext(RequesterId rid, ref long t)
    {
        // Root entry, then the context entry: two dependent reads.
        t = _timing.WalkRead(t);
        TableFetchReads++;
        var addr = TranslationTables.LocateContextEntry(_mem, Tables.RootTableAddress, rid);
        if (addr is not ulong a) return default;
        t = _timing.WalkRead(t);
        TableFetchReads++;
        return ContextEntry.Decode(_mem.ReadU64(a), _mem.ReadU64(a + 8));
    }

    private PasidTableEntry FetchPasidEntry(in ContextEntry ctx, uint pasid, ref long t)
    {
        // PASID-directory entry, then the PASID-table entry.
        t = _timing.WalkRead(t);
        TableFetchReads++;
        var addr = TranslationTables.LocatePasidEntry(_mem, ctx, pasid);
        if (addr is not ulong a) return default;
        t = _timing.WalkRead(t);
        TableFetchReads++;
        return PasidTableEntry.Decode(_mem.ReadU64(a), _mem.ReadU64(a + 8), _mem.ReadU64(a + 16));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void IotlbStage(Tlp tlp)
    {
        ref readonly var pte = ref tlp.Context;
        if (pte.Pgtt == Pgtt.PassThrough)
        {
            PassThroughTranslations++;
            tlp.PhysicalAddress = tlp.Address;
            Finish(tlp);
            return;
        }
        if (Iotlb.Lookup(pte.DomainId, tlp.EffectivePasid, tlp.Address, out var hit))
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
        if (tlp.IsWrite && !hit.Dirty && tlp.Context.DirtyTracking && hit.LeafEntryAddress != 0)
        {
            // Hardware sets the D bit on the first write through a clean cached translation.
            _mem.WriteU64(hit.LeafEntryAddress, _mem.ReadU64(hit.LeafEntryAddress) | PageTableFormat.S2Dirty | PageTableFormat.S2Accessed);
            Iotlb.MarkDirty(hit.Index);
        }
        tlp.PhysicalAddress = hit.PhysicalAddress;
        Finish(tlp);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    bool IWalkCompletion.TryCompleteFromIotlb(Tlp tlp)
    {
        // Filled while this miss waited for a walker: served without a walk (already counted as a miss).
        if (!Iotlb.Refetch(tlp.Context.DomainId, tlp.EffectivePasid, tlp.Address, out var hit)) return false;
        CompleteFromHit(tlp, hit);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void IWalkCompletion.OnWalkDone(Tlp tlp)
    {
        if (tlp.Faulted) Fault(tlp, tlp.FaultReason);
        else Finish(tlp);
    }

    /// <summary>Records the fault (taking <c>faultRecordCycles</c>) and then completes the request as failed.</summary>
    private void Fault(Tlp tlp, FaultReason reason)
    {
        tlp.Faulted = true;
        tlp.FaultReason = reason;
        RecordFault(tlp, reason);
        if (_options.FaultRecordCycles == 0 || tlp.IsTranslationRequest) Finish(tlp);
        else _sched.ScheduleAt(Clock.EdgeAfter(_sched.Now, _options.FaultRecordCycles), this, KindFaultRecorded, 0, tlp);
    }

    private void RecordFault(Tlp tlp, FaultReason reason)
    {
        // A failed ATS translation request is not a fault: the completion says "no access" and the
        // device may ask for the page with PRI.
        if (tlp.IsTranslationRequest) { AtsTranslationFailures++; return; }
        Observer?.OnFault(tlp, reason);
        Faults.Record(new FaultRecord(_sched.Now, tlp.RequesterId, tlp.Pasid, tlp.HasPasid, tlp.Address, tlp.Access, reason));
    }

    /// <summary>A PRI page request arrived: queue it for software (the uAPI fault queue reads it).</summary>
    public void RecordPageRequest(Tlp tlp)
    {
        Faults.RecordPageRequest(new PageRequest(_sched.Now, tlp.RequesterId, tlp.Pasid, tlp.HasPasid, tlp.Address, tlp.Access, tlp.PageGroupIndex, true));
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
        TranslationLatency.Record(_sched.Now - tlp.IommuArrivalPs);
        Observer?.OnTranslated(tlp);
        InFlight--;
        Sink?.OnTranslated(tlp);
        if (_sinkWaiting && InFlight < _options.InputQueueDepth)
        {
            _sinkWaiting = false;
            Sink?.OnInputQueueSpace();
        }
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

    // ---- invalidation ---------------------------------------------------------------------

    long IInvalidationTarget.ExtraLatencyPs(in InvalidationDescriptor d)
        => d.Type is InvalidationType.DeviceTlb or InvalidationType.PasidDeviceTlb ? _deviceTlbRoundTripPs : 0;

    void IInvalidationTarget.Apply(in InvalidationDescriptor d)
    {
        switch (d.Type)
        {
            case InvalidationType.ContextCache:
                // Scalable-mode context entries carry no DID: domain-selective acts globally.
                if (d.Granularity == InvalidationGranularity.Device)
                    ContextCache.InvalidateWhere(d.RequesterId, static (k, _, rid) => k == rid);
                else ContextCache.InvalidateAll();
                break;
            case InvalidationType.PasidCache:
                if (d.Granularity == InvalidationGranularity.Global) PasidCache.InvalidateAll();
                else if (d.Granularity == InvalidationGranularity.Domain)
                    PasidCache.InvalidateWhere(d.DomainId, static (_, v, did) => v.DomainId == did);
                else PasidCache.InvalidateWhere((d.DomainId, d.Pasid), static (k, v, s) => v.DomainId == s.DomainId && k.Pasid == s.Pasid);
                break;
            case InvalidationType.Iotlb:
                switch (d.Granularity)
                {
                    case InvalidationGranularity.Global:
                        Iotlb.InvalidateAll();
                        WalkCaches.InvalidateAll();
                        break;
                    case InvalidationGranularity.Domain:
                        Iotlb.InvalidateDomain(d.DomainId);
                        WalkCaches.InvalidateDomain(d.DomainId);
                        break;
                    default:
                    {
                        var (first, last) = Range(d);
                        Iotlb.InvalidateRange(d.DomainId, null, first, last);
                        if (!d.LeafOnly) WalkCaches.InvalidateSecondStage(d.DomainId, first, last);
                        break;
                    }
                }
                break;
            case InvalidationType.PasidIotlb:
                if (d.Granularity == InvalidationGranularity.Page)
                {
                    var (first, last) = Range(d);
                    Iotlb.InvalidateRange(d.DomainId, d.Pasid, first, last);
                    if (!d.LeafOnly) WalkCaches.InvalidateFirstStage(d.DomainId, d.Pasid, first, last);
                }
                else
                {
                    Iotlb.InvalidatePasid(d.DomainId, d.Pasid);
                    WalkCaches.InvalidateFirstStage(d.DomainId, d.Pasid);
                }
                break;
            case InvalidationType.DeviceTlb:
            case InvalidationType.PasidDeviceTlb:
                DeviceTlbInvalidations++;
                if (_endpoints.TryGetValue(d.RequesterId, out var ep)) ep.InvalidateDeviceTlb(d);
                break;
            case InvalidationType.PageGroupResponse:
                if (_endpoints.TryGetValue(d.RequesterId, out var ep2)) ep2.OnPageResponse(d);
                break;
            case InvalidationType.Wait:
                break;
        }
    }

    private static (ulong First, ulong Last) Range(in InvalidationDescriptor d)
    {
        ulong size = 1UL << (12 + d.AddressMask);
        ulong first = d.Address & ~(size - 1);
        return (first, first + size - 1);
    }

    public void Reset()
    {
        Iotlb.Reset();
        ContextCache.Reset();
        PasidCache.Reset();
        WalkCaches.Reset();
        _walker.Reset();
        Invalidation.Reset();
        Faults.ResetCounters();
        TranslationLatency.Reset();
        _stale.Reset();
        TableFetchReads = Translations = PassThroughTranslations = InputQueueFullRefusals = 0;
        DeviceTlbInvalidations = AtsTranslationFailures = AtsTranslationRequests = 0;
    }
}
