using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Hardware.Observers;

/// <summary>
/// Hooks on the hardware blocks, in the manner of Akita's hooks: statistics and tracing hang here
/// instead of inside the pipeline. Every hook is a no-op by default, so an observer overrides only
/// what it needs. A block holds one observer reference (null when nobody listens: a null check is
/// all the hot path pays) and passes pooled objects and primitives, so a call allocates nothing.
/// Hooks run synchronously inside the event that causes them, at the scheduler's current time
/// (<c>now</c>) unless a parameter says otherwise; an observer must not change model state.
/// </summary>
public abstract class HardwareObserver
{
    // ---- device (DmaEngine) -------------------------------------------------------------

    /// <summary>A DMA request entered the device's send queue (at <see cref="DmaRequest.IssuePs"/>).</summary>
    public virtual void OnDmaIssued(DmaEngine device, DmaRequest request) { }

    /// <summary>The device put a TLP on its link at now (memory request, translation request or page
    /// request); its last byte reaches the root port at <paramref name="linkArrivalPs"/>.</summary>
    public virtual void OnTlpSent(DmaEngine device, Tlp tlp, long linkArrivalPs) { }

    /// <summary>A TLP's last effect reached the device (write accepted by memory, last read completion,
    /// translation completion, dropped faulted write) at now; the TLP goes back to the pool after this.</summary>
    public virtual void OnTlpDone(DmaEngine device, Tlp tlp) { }

    /// <summary>A request completed (at <see cref="DmaRequest.CompletePs"/>), before the client sees it.</summary>
    public virtual void OnDmaCompleted(DmaEngine device, DmaRequest request) { }

    // ---- PCIe link -----------------------------------------------------------------------

    /// <summary>A link direction serialized a TLP (plus the DLLPs charged to it) from
    /// <paramref name="startPs"/> to <paramref name="endPs"/>.</summary>
    public virtual void OnLinkTransfer(LinkDirection direction, long startPs, long endPs, int wireBytes, int payloadBytes) { }

    // ---- root complex --------------------------------------------------------------------

    /// <summary>A TLP finished its upstream root-complex traversal (now) and is offered to the IOMMU.</summary>
    public virtual void OnRootComplexArrival(Tlp tlp) { }

    /// <summary>A translated TLP's memory access, issued now, completes at <paramref name="donePs"/>.</summary>
    public virtual void OnMemoryAccess(Tlp tlp, long donePs) { }

    /// <summary>The root complex returns a TLP's completion(s): they leave the root complex at
    /// <paramref name="leaveRootComplexPs"/> and the last one reaches the device at <paramref name="arrivalPs"/>.</summary>
    public virtual void OnCompletionSent(Tlp tlp, long leaveRootComplexPs, long arrivalPs) { }

    // ---- IOMMU pipeline ------------------------------------------------------------------

    /// <summary>The IOMMU accepted a TLP into its input queue (now); its context + IOTLB lookup ends at <paramref name="lookupDonePs"/>.</summary>
    public virtual void OnIommuAccepted(Tlp tlp, long lookupDonePs) { }

    /// <summary>A TLP missed the IOTLB and goes to the page walkers (now).</summary>
    public virtual void OnIotlbMiss(Tlp tlp) { }

    /// <summary>A TLP is translated from an IOTLB entry (a hit, or an entry filled while it waited for a walker), after the permission check.</summary>
    public virtual void OnTranslationFromIotlb(Tlp tlp) { }

    /// <summary>The IOMMU finished a TLP (translated, or faulted and recorded) at now.</summary>
    public virtual void OnTranslated(Tlp tlp) { }

    /// <summary>A non-recoverable fault was recorded (now).</summary>
    public virtual void OnFault(Tlp tlp, FaultReason reason) { }

    /// <summary>A PRI page request was queued for software (now).</summary>
    public virtual void OnPageRequest(Tlp tlp) { }

    // ---- page walkers --------------------------------------------------------------------

    /// <summary>Walker <paramref name="walker"/> starts a walk for <paramref name="tlp"/> (now).</summary>
    public virtual void OnWalkStarted(int walker, Tlp tlp) { }

    /// <summary>A miss joins the walk already running on <paramref name="walker"/> for its page (now).</summary>
    public virtual void OnWalkJoined(int walker, Tlp tlp) { }

    /// <summary>One table-entry read of a walk, issued at <paramref name="issuePs"/>, arriving at <paramref name="donePs"/>.</summary>
    public virtual void OnWalkRead(int walker, TableStage stage, int level, ulong entryAddress, long issuePs, long donePs) { }

    /// <summary>A walk that started at <paramref name="startPs"/> finished (now), before its waiters are translated.</summary>
    public virtual void OnWalkFinished(int walker, long startPs, int reads, bool faulted) { }

    // ---- invalidation queue --------------------------------------------------------------

    /// <summary>Software appended a descriptor (now).</summary>
    public virtual void OnInvalidationSubmitted(in InvalidationDescriptor descriptor, long ticket) { }

    /// <summary>The hardware finished a descriptor it started at <paramref name="startPs"/> and applied its effect (now).</summary>
    public virtual void OnInvalidationApplied(in InvalidationDescriptor descriptor, long startPs) { }

    // ---- SMMUv3 (iommu.architecture = smmuv3) ---------------------------------------------
    // The transaction carries its TLP in Packet (null for transactions not from PCIe). The table
    // walkers report reads and finished walks through OnWalkRead / OnWalkFinished above.

    /// <summary>The SMMU took <paramref name="t"/> into a translation slot (now); its configuration-cache lookup ends at <paramref name="configLookupDonePs"/>.</summary>
    public virtual void OnSmmuAccepted(SmmuTransaction t, long configLookupDonePs) { }

    /// <summary>One dependent read of a configuration fetch (L1 stream-table descriptor, STE, L1CD, CD, or a
    /// stage-2 descriptor translating a CD-table IPA) for the fetch <paramref name="t"/> leads, issued at now, arriving at <paramref name="donePs"/>.</summary>
    public virtual void OnSmmuConfigRead(SmmuTransaction t, SmmuConfigRead read, ulong address, long donePs) { }

    /// <summary>The configuration <paramref name="t"/> missed on is in (now): fetched by it (<paramref name="joined"/> false) or by the fetch it waited for; that fetch started at <paramref name="startPs"/>.</summary>
    public virtual void OnSmmuConfigFetched(SmmuTransaction t, long startPs, bool joined) { }

    /// <summary>The TLB lookup of <paramref name="t"/> finished (now): a hit, or a miss handed to the walkers.</summary>
    public virtual void OnSmmuTlbLookup(SmmuTransaction t, bool hit) { }

    /// <summary>Walker <paramref name="walker"/> starts a walk for <paramref name="t"/> (now).</summary>
    public virtual void OnSmmuWalkStarted(int walker, SmmuTransaction t) { }

    /// <summary>A TLB miss joins the walk already running on <paramref name="walker"/> for its page (now).</summary>
    public virtual void OnSmmuWalkJoined(int walker, SmmuTransaction t) { }

    /// <summary>A transaction raised an SMMU event (now): <paramref name="recorded"/> when written to (or lost from a full) event queue,
    /// <paramref name="stalled"/> when it holds its slot until CMD_RESUME.</summary>
    public virtual void OnSmmuFault(SmmuTransaction t, SmmuEventType type, bool stage2, bool recorded, bool stalled) { }

    /// <summary>CMD_RESUME released a stalled transaction (now): retried from the configuration stage, or terminated.</summary>
    public virtual void OnSmmuResumed(SmmuTransaction t, bool retry) { }

    /// <summary>The SMMU finished <paramref name="t"/> (translated, bypassed or faulted) at now, before its client sees it.</summary>
    public virtual void OnSmmuTranslated(SmmuTransaction t) { }

    /// <summary>A command queue finished a command (now): software wrote it at <paramref name="submitPs"/>, the consumer
    /// started fetching it at <paramref name="fetchPs"/>. <paramref name="queue"/> is the main queue or an extra one (a Tegra241 VCMDQ).</summary>
    public virtual void OnSmmuCommand(CommandQueue queue, in SmmuCommand command, long submitPs, long fetchPs) { }

    /// <summary>Software's commands did not fit <paramref name="queue"/> (now): it waits for the consumer.</summary>
    public virtual void OnSmmuCommandQueueFull(CommandQueue queue, int commands) { }
}
