using System.Runtime.CompilerServices;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Caches;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Hardware.Smmu.Walk;

namespace IommuSim.Hardware.Smmu;

/// <summary>
/// The SMMUv3 translation pipeline, in its own clock: <c>translationSlots</c> transactions at once;
/// each looks up the configuration cache (a miss reads the STE through the stream table and, for
/// stage 1, the CD through the CD table — under nesting the CD table's addresses are IPAs, each
/// translated by a stage-2 walk), then the TLB, and misses go to the table walkers. Faults are
/// recorded in the event queue; with CD.S (stall) a stage-1 fault holds the transaction until
/// software sends CMD_RESUME. The command queue edits the caches; every structure is in simulated
/// memory. Blocks: <see cref="ConfigCache"/>, <see cref="SmmuTlb"/>, <see cref="SmmuWalkCaches"/>,
/// <see cref="SmmuWalker"/>, <see cref="CommandQueue"/>, <see cref="EventQueue"/>, <see cref="PriQueue"/>.
/// </summary>
public sealed partial class SmmuUnit : IEventHandler, ISmmuWalkCompletion, IResettable
{
    private const int KindConfig = 1;
    private const int KindTlb = 2;
    private const int KindConfigRead = 3;

    private readonly SmmuOptions _options;
    private readonly Scheduler _sched;
    private readonly PhysicalMemory _mem;
    private readonly MemoryTimingModel _timing;
    private readonly SmmuWalker _walker;
    private readonly Dictionary<uint, ISmmuAtsEndpoint> _endpoints = [];
    private readonly Dictionary<ushort, SmmuTransaction> _stalled = [];
    private readonly long _atcRoundTripPs;
    private long _nextLookupEdge;
    private ushort _nextStag;
    private bool _clientWaiting;
    private readonly List<CommandQueue> _queues = [];
    private HardwareObserver? _external;

    public SmmuUnit(SmmuOptions options, Scheduler sched, PhysicalMemory mem, FrameAllocator frames, MemoryTimingModel timing)
    {
        _options = options;
        _sched = sched;
        _mem = mem;
        _timing = timing;
        Clock = new ClockDomain("smmu", options.ClockMHz);
        Memory = new HostSmmuTableMemory(mem, frames);
        Tlb = new SmmuTlb(options.Tlb);
        ConfigCache = new ConfigCache(options.ConfigCache);
        WalkCaches = new SmmuWalkCaches(options.WalkCache);
        _walker = new SmmuWalker(options.Walkers, WalkCaches, Tlb, mem, timing, sched, Clock, options.WalkCache.LookupCycles, this);
        CommandQueue = new CommandQueue(Memory, timing, sched, Clock, options.Queues.CommandQueueLog2, options.Queues.CyclesPerCommand, mem);
        CommandTarget = new CommandExecutor(this);
        CommandQueue.Attach(CommandTarget);
        Statistics = new SmmuStatistics(CommandQueue, sched);
        _queues.Add(CommandQueue);
        EventQueue = new EventQueue(Memory, options.Queues.EventQueueLog2);
        PriQueue = new PriQueue(Memory, options.Queues.PriQueueLog2);
        _atcRoundTripPs = SimTime.FromNs(options.Queues.AtcInvalidateRoundTripNs);
        SetObserver(null);
    }

    /// <summary>Fault, configuration-fetch and command-queue statistics: an observer on this SMMU's hooks, always attached.</summary>
    public SmmuStatistics Statistics { get; }

    /// <summary>The hooks' listeners: <see cref="Statistics"/>, then <paramref name="external"/> (tracing; null when nobody else listens).</summary>
    internal HardwareObserver? Observer { get; private set; }

    /// <summary>Hangs <paramref name="external"/> (with <see cref="Statistics"/>) on the pipeline, the walkers and every command queue.</summary>
    public void SetObserver(HardwareObserver? external)
    {
        _external = external;
        Observer = ObserverFanout.Combine(Statistics, external);
        _walker.Observer = Observer;
        foreach (var q in _queues) q.Observer = Observer;
    }

    /// <summary>Transactions that raised <paramref name="type"/> (recorded or not).</summary>
    public long FaultsOf(SmmuEventType type) => Statistics.FaultsOf(type);

    public SmmuOptions Options => _options;
    public ClockDomain Clock { get; }
    public ISmmuTableMemory Memory { get; }
    public SmmuTlb Tlb { get; }
    public ConfigCache ConfigCache { get; }
    public SmmuWalkCaches WalkCaches { get; }
    public SmmuWalker Walker => _walker;
    public CommandQueue CommandQueue { get; }

    /// <summary>What consumes commands (caches, ATS endpoints, stalls): every command queue of this SMMU feeds it,
    /// the main one and any extra queue an implementation adds (Tegra241 VCMDQs).</summary>
    public ISmmuCommandTarget CommandTarget { get; }

    /// <summary>An extra command queue the hardware reads at <paramref name="basePa"/> (2^<paramref name="log2Size"/>
    /// commands) with the main queue's consumer timing, executing on this SMMU (a Tegra241 VCMDQ in guest memory).</summary>
    public CommandQueue CreateCommandQueue(ulong basePa, int log2Size)
    {
        var q = new CommandQueue(Memory, _timing, _sched, Clock, log2Size, _options.Queues.CyclesPerCommand, _mem, basePa);
        q.Attach(CommandTarget);
        q.Observer = Observer;
        _queues.Add(q);
        Statistics.AddQueue(q);
        return q;
    }
    public EventQueue EventQueue { get; }
    public PriQueue PriQueue { get; }
    /// <summary>SMMU_STRTAB_BASE / _CFG, as the driver programmed them.</summary>
    public StreamTable? StreamTable { get; set; }
    public ISmmuClient? Client { get; set; }

    public int InFlight { get; private set; }
    public long Translations { get; private set; }
    public long Bypassed { get; private set; }
    public long ConfigFetchReads { get; private set; }
    public long SlotFullRefusals { get; private set; }
    public long Stalls { get; private set; }
    /// <summary>Writes that hit a TLB entry whose page was not yet dirty and re-walked to set its dirty state.</summary>
    public long DirtyUpdateWalks { get; private set; }
    public LatencyHistogram TranslationLatency { get; } = new("smmu.translation");

    public void RegisterEndpoint(uint sid, ISmmuAtsEndpoint endpoint) => _endpoints[sid] = endpoint;

    /// <summary>Takes a transaction into a translation slot, or refuses it (all slots busy): the
    /// client then gets <see cref="ISmmuClient.OnSlotFree"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryAccept(SmmuTransaction t)
    {
        if (InFlight >= _options.TranslationSlots)
        {
            SlotFullRefusals++;
            _clientWaiting = true;
            return false;
        }
        InFlight++;
        t.ClearResult();
        t.ArrivalPs = _sched.Now;
        long start = Clock.EdgeIndexAtOrAfter(_sched.Now);
        if (start < _nextLookupEdge) start = _nextLookupEdge;
        _nextLookupEdge = start + 1;
        long lookupDone = Clock.EdgeTime(start + _options.ConfigCache.LookupCycles);
        _sched.ScheduleAt(lookupDone, this, KindConfig, 0, t);
        Observer?.OnSmmuAccepted(t, lookupDone);
        return true;
    }

    public void OnEvent(int kind, long arg, object? payload)
    {
        if (kind == KindConfigRead) { OnConfigRead((ConfigFetch)payload!); return; }
        var t = (SmmuTransaction)payload!;
        if (kind == KindConfig) ConfigStage(t);
        else TlbStage(t);
    }

    private void ConfigStage(SmmuTransaction t)
    {
        uint ssid = t.HasSsid ? t.Ssid : 0;
        if (!ConfigCache.TryGet(t.Sid, ssid, out var config))
        {
            StartConfigFetch(t);
            return;
        }
        t.Config = config;
        _sched.ScheduleAt(Clock.EdgeAfter(_sched.Now, _options.Tlb.LookupCycles), this, KindTlb, 0, t);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void TlbStage(SmmuTransaction t)
    {
        ref readonly var c = ref t.Config;
        if (!c.Stage1 && !c.Stage2)
        {
            Bypassed++;
            t.OutputAddress = t.Address;
            Done(t);
            return;
        }
        if (Tlb.Lookup(c.Vmid, c.Asid, c.Stage1, t.Address, out var hit))
        {
            if ((t.Access & ~hit.Access) != 0)
            {
                t.TlbHit = true;
                Observer?.OnSmmuTlbLookup(t, true);
                RefuseFromTlb(t, hit);
                return;
            }
            if (t.IsWrite && !hit.Dirty && (c.Cd.HardwareDirty || c.Ste.S2HardwareDirty))
            {
                // A write through a writable-clean entry: the SMMU walks again to record the dirty state.
                DirtyUpdateWalks++;
                Observer?.OnSmmuTlbLookup(t, false);
                _walker.Submit(t);
                return;
            }
            t.TlbHit = true;
            t.OutputAddress = hit.OutputAddress;
            if (_stale.Count > 0) CountIfStale(c.Vmid, c.Asid, t.Address);
            Observer?.OnSmmuTlbLookup(t, true);
            Done(t);
            return;
        }
        Observer?.OnSmmuTlbLookup(t, false);
        _walker.Submit(t);
    }

    void ISmmuWalkCompletion.OnWalkDone(SmmuTransaction t)
    {
        if (t.Faulted) Fail(t, t.Fault, t.FaultInStage2);
        else Done(t);
    }

    bool ISmmuWalkCompletion.TryCompleteFromTlb(SmmuTransaction t)
    {
        ref readonly var c = ref t.Config;
        if (!Tlb.Contains(c.Vmid, c.Asid, c.Stage1, t.Address)) return false;
        Tlb.Lookup(c.Vmid, c.Asid, c.Stage1, t.Address, out var hit);
        if ((t.Access & ~hit.Access) != 0) RefuseFromTlb(t, hit);
        else if (t.IsWrite && !hit.Dirty && (c.Cd.HardwareDirty || c.Ste.S2HardwareDirty)) return false;
        else
        {
            t.OutputAddress = hit.OutputAddress;
            if (_stale.Count > 0) CountIfStale(c.Vmid, c.Asid, t.Address);
            Done(t);
        }
        return true;
    }

    /// <summary>A TLB hit that does not allow the access: a permission fault of the stage that refused it.</summary>
    private void RefuseFromTlb(SmmuTransaction t, in SmmuTlbHit hit)
    {
        bool stage2 = (t.Access & ~hit.Stage1Access) == 0;
        if (stage2) t.FaultIpa = t.Config.Stage1 ? 0 : t.Address;
        Fail(t, SmmuEventType.Permission, stage2);
    }

    /// <summary>A translation fault: recorded in the event queue (stage 2 always, stage 1 when CD.R), and
    /// either stalled until CMD_RESUME (CD.S / STE.S2S) or terminated.</summary>
    private void Fail(SmmuTransaction t, SmmuEventType type, bool stage2)
    {
        ref readonly var c = ref t.Config;
        // An ATS Translation Request neither stalls nor records a translation-related event: the failure goes back in
        // its completion (R = W = 0) and the device may ask for the page with PRI (SMMUv3 §3.9.1, ATS and PRI).
        bool atsRequest = t.Packet is { IsTranslationRequest: true };
        bool record = !atsRequest && (stage2 || c.Cd.Record || !c.Stage1);
        bool stall = !atsRequest && (stage2 ? c.Ste.S2Stall : c.Stage1 && c.Cd.Stall && !c.Ste.S1StallDisable) && type != SmmuEventType.AddressSize;
        t.Faulted = true;
        t.Fault = type;
        t.FaultInStage2 = stage2;
        var cls = t.FaultOnTableWalk ? SmmuEventClass.TranslationTable : SmmuEventClass.Input;
        if (stall)
        {
            ushort stag = _nextStag++;
            _stalled[stag] = t;
            Stalls++;
            Observer?.OnSmmuFault(t, type, stage2, recorded: true, stalled: true);
            EventQueue.Record(new SmmuEvent(type, t.Sid, t.Ssid, t.HasSsid, t.Address, t.IsWrite, stage2, cls, t.FaultIpa, true, stag));
            return; // holds its slot until RESUME
        }
        Observer?.OnSmmuFault(t, type, stage2, record, stalled: false);
        if (record) EventQueue.Record(new SmmuEvent(type, t.Sid, t.Ssid, t.HasSsid, t.Address, t.IsWrite, stage2, cls, t.FaultIpa, false, 0));
        Done(t);
    }

    /// <summary>A configuration error (C_BAD_*): recorded and terminated; <paramref name="cls"/> null records nothing (STE.Config = abort).</summary>
    private void Terminate(SmmuTransaction t, SmmuEventType type, SmmuEventClass? cls)
    {
        t.Faulted = true;
        t.Fault = type;
        Observer?.OnSmmuFault(t, type, false, cls is not null, stalled: false);
        if (cls is SmmuEventClass c) EventQueue.Record(new SmmuEvent(type, t.Sid, t.Ssid, t.HasSsid, t.Address, t.IsWrite, false, c, 0, false, 0));
        Done(t);
    }

    private void Done(SmmuTransaction t)
    {
        Translations++;
        TranslationLatency.Record(_sched.Now - t.ArrivalPs);
        InFlight--;
        Observer?.OnSmmuTranslated(t);
        Client?.OnTranslated(t);
        if (_clientWaiting)
        {
            _clientWaiting = false;
            Client?.OnSlotFree();
        }
    }

    /// <summary>CMD_RESUME: retry (translate again from the configuration stage) or terminate a stalled transaction.</summary>
    private void Resume(uint sid, ushort stag, bool retry)
    {
        if (!_stalled.Remove(stag, out var t) || t.Sid != sid) return;
        Observer?.OnSmmuResumed(t, retry);
        if (!retry)
        {
            Done(t);
            return;
        }
        t.ClearResult();
        _sched.ScheduleAt(Clock.EdgeAfter(_sched.Now, _options.ConfigCache.LookupCycles), this, KindConfig, 0, t);
    }

    public void Reset()
    {
        Translations = Bypassed = ConfigFetchReads = SlotFullRefusals = Stalls = DirtyUpdateWalks = StaleTranslationsUsed = 0;
        TranslationLatency.Reset();
        Tlb.Reset();
        ConfigCache.Reset();
        WalkCaches.Reset();
        _walker.Reset();
        CommandQueue.Reset();
        EventQueue.Reset();
        PriQueue.Reset();
        Statistics.Reset();
    }
}
