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

    /// <summary>Every phase name, for tests and docs.</summary>
    public static readonly string[] PhaseNames =
    [
        "device queue", "link up", "root complex up", "held: IOMMU queue full", "context + IOTLB lookup", "walker queue", "page walk",
        "fault record", "IOMMU finish", "write ordering", "memory", "root complex down", "link down", "device wait",
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
        ADevice = E("device"), ADelivery = E("deliveryNs"), ASuccess = E("success"), ARequester = E("rid");
}
