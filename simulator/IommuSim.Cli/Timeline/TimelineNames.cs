using System.Text.Json;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Observers;

namespace IommuSim.Cli.Timeline;

/// <summary>Pre-encoded event names, categories and argument keys of the timeline (docs/timeline.md).</summary>
internal static class TimelineNames
{
    private static JsonEncodedText E(string s) => JsonEncodedText.Encode(s);

    // Categories.
    public static readonly JsonEncodedText CatDma = E("dma"), CatPhase = E("dma.phase"), CatPcie = E("pcie"), CatIommu = E("iommu"),
        CatWalk = E("walk"), CatMemory = E("memory"), CatInvalidation = E("invalidation"), CatSoftware = E("software"),
        CatFault = E("fault"), CatVmm = E("vmm"), CatFlow = E("dma.flow");

    // Request slices and their phases (the phases tile the request: see RequestPhases).
    public static readonly JsonEncodedText Read = E("DMA read"), Write = E("DMA write"), Flow = E("DMA");
    public static readonly JsonEncodedText PhDevice = E("device queue"), PhLinkUp = E("link up"), PhRcUp = E("root complex up"),
        PhHeld = E("held: IOMMU queue full"), PhLookup = E("context + IOTLB lookup"), PhWalkQueue = E("walker queue"),
        PhWalk = E("page walk"), PhFaultRecord = E("fault record"), PhAfterWalk = E("IOMMU finish"), PhOrdering = E("write ordering"),
        PhMemory = E("memory"), PhRcDown = E("root complex down"), PhLinkDown = E("link down"), PhDeviceTail = E("device wait");

    // SMMUv3 phases (they replace the lookup phase: config cache → STE/CD fetch → TLB).
    public static readonly JsonEncodedText PhConfigLookup = E("config cache lookup"), PhConfigFetch = E("STE/CD fetch"),
        PhTlbLookup = E("TLB lookup"), PhStalled = E("stalled until CMD_RESUME");

    /// <summary>Every phase name, for tests and docs.</summary>
    public static readonly string[] PhaseNames =
    [
        "device queue", "link up", "root complex up", "held: IOMMU queue full", "context + IOTLB lookup", "walker queue", "page walk",
        "fault record", "IOMMU finish", "write ordering", "memory", "root complex down", "link down", "device wait",
        "config cache lookup", "STE/CD fetch", "TLB lookup", "stalled until CMD_RESUME",
    ];

    // Hardware slices.
    public static readonly JsonEncodedText LinkMwr = E("MWr"), LinkHeader = E("MRd/Msg"), LinkCplD = E("CplD"), LinkCpl = E("Cpl"),
        RcUp = E("traversal up"), RcDown = E("traversal down"), RcHeld = E("held"),
        IommuHit = E("IOTLB hit"), IommuMiss = E("IOTLB miss"), IommuFault = E("fault"), IommuAts = E("ATS translation"),
        IommuPassThrough = E("pass-through"), Lookup = E("lookup"), MissWait = E("miss: walk"),
        Walk = E("walk"), MemRead = E("read"), MemWrite = E("write");

    private static readonly JsonEncodedText[,] WalkReads = BuildWalkReads();

    private static JsonEncodedText[,] BuildWalkReads()
    {
        var t = new JsonEncodedText[2, 6];
        string[] s1 = ["", "PTE", "PDE", "PDPE", "PML4E", "PML5E"];
        for (int l = 0; l < 6; l++)
        {
            t[0, l] = E($"S1 {s1[l]} read");
            t[1, l] = E($"S2 L{l} read");
        }
        return t;
    }

    public static JsonEncodedText WalkRead(bool stage1, int level) => WalkReads[stage1 ? 0 : 1, Math.Clamp(level, 0, 5)];

    // SMMUv3: slot slices, configuration reads, VMSAv8-64 levels (0–3), events and commands by their spec names.
    public static readonly JsonEncodedText SmmuTlbHit = E("TLB hit"), SmmuTlbMiss = E("TLB miss"), SmmuBypass = E("bypass"),
        SmmuStalled = E("stalled until CMD_RESUME"), SmmuConfigLookup = E("config cache lookup"), SmmuConfigFetch = E("STE/CD fetch"),
        SmmuTlbLookup = E("TLB lookup"), SmmuQueueFull = E("queue full");

    private static readonly JsonEncodedText[,] SmmuWalkReads = BuildSmmuWalkReads();

    private static JsonEncodedText[,] BuildSmmuWalkReads()
    {
        var t = new JsonEncodedText[2, 4];
        for (int l = 0; l < 4; l++)
        {
            t[0, l] = E($"S1 L{l} read");
            t[1, l] = E($"S2 L{l} read");
        }
        return t;
    }

    public static JsonEncodedText SmmuWalkRead(bool stage1, int level) => SmmuWalkReads[stage1 ? 0 : 1, Math.Clamp(level, 0, 3)];

    private static readonly JsonEncodedText[] ConfigReadNames = Enum.GetValues<Hardware.Smmu.SmmuConfigRead>().Select(r => E(r switch
    {
        Hardware.Smmu.SmmuConfigRead.L1Std => "L1STD read",
        Hardware.Smmu.SmmuConfigRead.Ste => "STE read",
        Hardware.Smmu.SmmuConfigRead.Stage2 => "CD IPA: S2 read",
        Hardware.Smmu.SmmuConfigRead.L1Cd => "L1CD read",
        _ => "CD read",
    })).ToArray();

    public static JsonEncodedText SmmuConfigReadName(Hardware.Smmu.SmmuConfigRead r) => ConfigReadNames[(int)r];

    private static readonly JsonEncodedText[] SmmuFaults = Enumerable.Range(0, 256)
        .Select(i => E("fault: " + Hardware.Observers.SmmuStatistics.SpecName((Hardware.Smmu.SmmuEventType)i))).ToArray();
    private static readonly JsonEncodedText[] SmmuFaultKeys = Enumerable.Range(0, 256)
        .Select(i => E(Hardware.Observers.SmmuStatistics.SpecName((Hardware.Smmu.SmmuEventType)i))).ToArray();

    public static JsonEncodedText SmmuFault(Hardware.Smmu.SmmuEventType t) => SmmuFaults[(byte)t];

    public static JsonEncodedText SmmuFaultKey(Hardware.Smmu.SmmuEventType t) => SmmuFaultKeys[(byte)t];

    private static readonly JsonEncodedText[] SmmuCommands = Enumerable.Range(0, 256).Select(i => E(CommandName((Hardware.Smmu.Queues.SmmuOpcode)i))).ToArray();

    /// <summary>Linux's name of a command (CMDQ_OP_TLBI_NH_VA → CMD_TLBI_NH_VA).</summary>
    public static string CommandName(Hardware.Smmu.Queues.SmmuOpcode op)
    {
        if (!Enum.IsDefined(op)) return $"CMD_0x{(byte)op:x2}";
        if (op == Hardware.Smmu.Queues.SmmuOpcode.CmdSync) return "CMD_SYNC";
        return "CMD_" + System.Text.RegularExpressions.Regex.Replace(op.ToString(), "(?<!^)([A-Z])", "_$1").ToUpperInvariant();
    }

    public static JsonEncodedText SmmuCommandName(Hardware.Smmu.Queues.SmmuOpcode op) => SmmuCommands[(byte)op];

    // Instants.
    public static readonly JsonEncodedText PageRequest = E("PRI page request"), VmExit = E("VM exit"), FlushTimer = E("lazy flush (timer)"),
        FlushFull = E("lazy flush (queue full)");

    private static readonly JsonEncodedText[] Faults = Enum.GetValues<FaultReason>().Select(r => E("fault: " + r.Key())).ToArray();
    private static readonly JsonEncodedText[] FaultKeys = Enum.GetValues<FaultReason>().Select(r => E(r.Key())).ToArray();

    public static JsonEncodedText Fault(FaultReason r) => Faults[(int)r];

    public static JsonEncodedText FaultKey(FaultReason r) => FaultKeys[(int)r];

    private static readonly JsonEncodedText[] InvNames = Enum.GetValues<InvalidationType>().Select(t => E(t switch
    {
        InvalidationType.ContextCache => "context-cache inv",
        InvalidationType.PasidCache => "PASID-cache inv",
        InvalidationType.Iotlb => "IOTLB inv",
        InvalidationType.PasidIotlb => "PASID-IOTLB inv",
        InvalidationType.DeviceTlb => "device-TLB inv",
        InvalidationType.PasidDeviceTlb => "PASID device-TLB inv",
        InvalidationType.Wait => "wait",
        _ => "page group response",
    })).ToArray();

    private static readonly JsonEncodedText[] InvSubmitNames = Enum.GetValues<InvalidationType>().Select(t => E("submit " + InvNames[(int)t].ToString())).ToArray();
    private static readonly JsonEncodedText[] Granularities = Enum.GetValues<InvalidationGranularity>().Select(g => E(g.ToString().ToLowerInvariant())).ToArray();

    public static JsonEncodedText Invalidation(InvalidationType t) => InvNames[(int)t];

    public static JsonEncodedText InvalidationSubmit(InvalidationType t) => InvSubmitNames[(int)t];

    public static JsonEncodedText Granularity(InvalidationGranularity g) => Granularities[(int)g];

    // Software.
    public static readonly JsonEncodedText Map = E("dma_map"), Unmap = E("dma_unmap"), PageFault = E("I/O page fault"),
        FaultViaVmm = E("fault round trip via VMM");

    private static readonly JsonEncodedText[] Phases = Enum.GetValues<DmaApiPhase>().Select(p => E(p switch
    {
        DmaApiPhase.MapWork => "map: page tables",
        DmaApiPhase.MapOverhead => "map: trap/ioctl",
        DmaApiPhase.UnmapWork => "unmap: page tables",
        DmaApiPhase.UnmapOverhead => "unmap: ioctl",
        DmaApiPhase.InvalidationSubmit => "submit invalidation",
        DmaApiPhase.InvalidationOverhead => "invalidation: trap/ioctl",
        _ => "wait for invalidation",
    })).ToArray();

    public static JsonEncodedText Phase(DmaApiPhase p) => Phases[(int)p];

    private static readonly JsonEncodedText[] Traps = Enum.GetValues<DmaApiPhase>().Select(p => E(p switch
    {
        DmaApiPhase.MapOverhead => "trapped map (caching mode)",
        DmaApiPhase.UnmapOverhead => "trapped unmap",
        _ => "trapped invalidation",
    })).ToArray();

    public static JsonEncodedText Trap(DmaApiPhase p) => Traps[(int)p];

    // Argument keys.
    public static readonly JsonEncodedText AId = E("id"), ABytes = E("bytes"), AIova = E("iova"), ALatency = E("latencyNs"),
        ATlps = E("tlps"), AWalkReads = E("walkReads"), AFault = E("fault"), AAddress = E("address"), AWire = E("wireBytes"),
        APayload = E("payload"), AReads = E("reads"), AFaulted = E("faulted"), ADid = E("did"), APasid = E("pasid"),
        AGranularity = E("granularity"), AMask = E("addressMask"), ATicket = E("ticket"), AEntries = E("entries"),
        ADevice = E("device"), ADelivery = E("deliveryNs"), ASuccess = E("success"), ARequester = E("rid"),
        ASid = E("sid"), ASsid = E("ssid"), AStage2 = E("stage2"), ARecorded = E("recorded"), AStalled = E("stalled"), AJoined = E("joined"),
        AVmid = E("vmid"), AAsid = E("asid"), APages = E("pages"), AQueuedNs = E("queuedNs"), AWaitNs = E("waitNs");
}
