using IommuSim.Engine.Stats;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Hardware.Observers;

/// <summary>Command classes of the summary (SMMUv3 §4: configuration, TLB, ATC invalidation, PRI and stall responses, sync).</summary>
public enum SmmuCommandClass : byte { Cfgi, Tlbi, AtcInv, PriResp, Resume, Sync, Prefetch }

/// <summary>What one command queue consumed: per opcode and class, CMD_SYNC waits, full-queue stalls, consumer busy time.</summary>
public sealed class SmmuQueueStatistics(CommandQueue queue) : IResettable
{
    private readonly long[] _byOpcode = new long[256];
    private readonly long[] _byClass = new long[Enum.GetValues<SmmuCommandClass>().Length];

    public CommandQueue Queue { get; } = queue;
    public long Commands { get; private set; }
    /// <summary>Software found the queue without room for its commands and waited (arm_smmu_cmdq_issue_cmdlist's poll for space).</summary>
    public long FullStalls { get; private set; }
    /// <summary>Time the consumer spent on commands: from the start of a command's fetch to its completion (ps).</summary>
    public long BusyPs { get; private set; }
    /// <summary>CMD_SYNC from software writing it to its completion (what a driver waiting on it sees).</summary>
    public LatencyHistogram SyncWait { get; } = new("smmu.cmdSyncWait");

    public long Of(SmmuOpcode op) => _byOpcode[(byte)op];
    public long Of(SmmuCommandClass c) => _byClass[(int)c];

    internal void Command(in SmmuCommand c, long submitPs, long fetchPs, long now)
    {
        Commands++;
        _byOpcode[(byte)c.Opcode]++;
        _byClass[(int)SmmuStatistics.ClassOf(c.Opcode)]++;
        BusyPs += now - fetchPs;
        if (c.Opcode == SmmuOpcode.CmdSync) SyncWait.Record(now - submitPs);
    }

    internal void Full() => FullStalls++;

    public void Reset()
    {
        Array.Clear(_byOpcode);
        Array.Clear(_byClass);
        Commands = FullStalls = BusyPs = 0;
        SyncWait.Reset();
    }
}

/// <summary>
/// The SMMU's statistics that hang on its hooks rather than inside the pipeline: faults by event type
/// (every transaction that raised an event, whether the event queue recorded it or not), configuration
/// fetches (latency, joined misses), and per command queue what it consumed — the main queue and every
/// extra queue (Tegra241 VCMDQs), in creation order. Always attached by <see cref="SmmuUnit"/>; allocates
/// nothing per event (Akita-style, like the VT-d unit's stale-translation tracker).
/// </summary>
public sealed class SmmuStatistics : HardwareObserver, IResettable
{
    private readonly long[] _faults = new long[256];
    private readonly List<SmmuQueueStatistics> _queues = [];
    private readonly Engine.Scheduling.Scheduler? _sched;

    public SmmuStatistics(CommandQueue main, Engine.Scheduling.Scheduler? sched = null)
    {
        _sched = sched;
        Main = new SmmuQueueStatistics(main);
        _queues.Add(Main);
    }

    /// <summary>Every event type the model raises, in spec order (the keys of <c>faults.byReason</c> on SMMUv3).</summary>
    public static readonly SmmuEventType[] EventTypes =
    [
        SmmuEventType.BadStreamId, SmmuEventType.BadSte, SmmuEventType.StreamDisabled, SmmuEventType.BadSubstreamId,
        SmmuEventType.BadCd, SmmuEventType.Translation, SmmuEventType.AddressSize, SmmuEventType.AccessFlag, SmmuEventType.Permission,
    ];

    /// <summary>The summary key of an event type: the spec's name in camelCase (C_BAD_STE → cBadSte, F_TRANSLATION → fTranslation).</summary>
    public static string Key(SmmuEventType t) => t switch
    {
        SmmuEventType.BadStreamId => "cBadStreamId",
        SmmuEventType.BadSte => "cBadSte",
        SmmuEventType.StreamDisabled => "fStreamDisabled",
        SmmuEventType.BadSubstreamId => "cBadSubstreamId",
        SmmuEventType.BadCd => "cBadCd",
        SmmuEventType.Translation => "fTranslation",
        SmmuEventType.AddressSize => "fAddrSize",
        SmmuEventType.AccessFlag => "fAccess",
        SmmuEventType.Permission => "fPermission",
        _ => "event0x" + ((byte)t).ToString("x2", System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>The spec's name (C_BAD_STE, F_TRANSLATION, …), as Linux's event_str (arm-smmu-v3.c) prints it for EVT_ID_* (arm-smmu-v3.h).</summary>
    public static string SpecName(SmmuEventType t) => t switch
    {
        SmmuEventType.BadStreamId => "C_BAD_STREAMID",
        SmmuEventType.BadSte => "C_BAD_STE",
        SmmuEventType.StreamDisabled => "F_STREAM_DISABLED",
        SmmuEventType.BadSubstreamId => "C_BAD_SUBSTREAMID",
        SmmuEventType.BadCd => "C_BAD_CD",
        SmmuEventType.Translation => "F_TRANSLATION",
        SmmuEventType.AddressSize => "F_ADDR_SIZE",
        SmmuEventType.AccessFlag => "F_ACCESS",
        SmmuEventType.Permission => "F_PERMISSION",
        _ => "EVENT_0x" + ((byte)t).ToString("x2", System.Globalization.CultureInfo.InvariantCulture),
    };

    public static SmmuCommandClass ClassOf(SmmuOpcode op) => op switch
    {
        SmmuOpcode.CfgiSte or SmmuOpcode.CfgiSteRange or SmmuOpcode.CfgiCd or SmmuOpcode.CfgiCdAll => SmmuCommandClass.Cfgi,
        SmmuOpcode.AtcInv => SmmuCommandClass.AtcInv,
        SmmuOpcode.PriResp => SmmuCommandClass.PriResp,
        SmmuOpcode.Resume => SmmuCommandClass.Resume,
        SmmuOpcode.CmdSync => SmmuCommandClass.Sync,
        SmmuOpcode.PrefetchConfig => SmmuCommandClass.Prefetch,
        _ => SmmuCommandClass.Tlbi,
    };

    public long Faults { get; private set; }
    public long FaultsRecorded { get; private set; }
    public long FaultsStalled { get; private set; }
    public long FaultsStage2 { get; private set; }
    public long FaultsOf(SmmuEventType t) => _faults[(byte)t];

    /// <summary>Configuration fetches, from the first read's issue to the configuration being in (ps).</summary>
    public LatencyHistogram ConfigFetchLatency { get; } = new("smmu.configFetch");
    /// <summary>Configuration-cache misses that waited for a fetch already in flight for their stream.</summary>
    public long ConfigFetchesJoined { get; private set; }

    /// <summary>The main command queue.</summary>
    public SmmuQueueStatistics Main { get; }
    /// <summary>Extra command queues (Tegra241 VCMDQs) in creation order.</summary>
    public IEnumerable<SmmuQueueStatistics> Extra => _queues.Skip(1);
    public int ExtraCount => _queues.Count - 1;
    /// <summary>Every command queue, the main one first.</summary>
    public IReadOnlyList<SmmuQueueStatistics> All => _queues;

    internal void AddQueue(CommandQueue q) => _queues.Add(new SmmuQueueStatistics(q));

    private SmmuQueueStatistics? Find(CommandQueue q)
    {
        foreach (var s in _queues)
            if (ReferenceEquals(s.Queue, q)) return s;
        return null;
    }

    public override void OnSmmuFault(SmmuTransaction t, SmmuEventType type, bool stage2, bool recorded, bool stalled)
    {
        // A failed ATS Translation Request is an answer (R = W = 0, then PRI), not a fault (SMMUv3 §3.9.1): VT-d does
        // not count it either.
        if (t.Packet is { IsTranslationRequest: true }) return;
        Faults++;
        _faults[(byte)type]++;
        if (recorded) FaultsRecorded++;
        if (stalled) FaultsStalled++;
        if (stage2) FaultsStage2++;
    }

    public override void OnSmmuConfigFetched(SmmuTransaction t, long startPs, bool joined)
    {
        if (joined) ConfigFetchesJoined++;
        else if (_sched is not null) ConfigFetchLatency.Record(_sched.Now - startPs);
    }

    public override void OnSmmuCommand(CommandQueue queue, in SmmuCommand command, long submitPs, long fetchPs)
        => Find(queue)?.Command(command, submitPs, fetchPs, _sched?.Now ?? fetchPs);

    public override void OnSmmuCommandQueueFull(CommandQueue queue, int commands) => Find(queue)?.Full();

    public void Reset()
    {
        Array.Clear(_faults);
        Faults = FaultsRecorded = FaultsStalled = FaultsStage2 = ConfigFetchesJoined = 0;
        ConfigFetchLatency.Reset();
        foreach (var q in _queues) q.Reset();
    }
}
