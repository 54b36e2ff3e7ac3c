using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Hardware.Observers;

/// <summary>
/// Several observers behind one reference: each hook calls them in the order they were added.
/// Blocks never see a fan-out of one or zero (<see cref="Combine"/> returns the observer itself or null).
/// </summary>
public sealed class ObserverFanout : HardwareObserver
{
    private readonly HardwareObserver[] _all;

    private ObserverFanout(HardwareObserver[] all) => _all = all;

    /// <summary>The single reference blocks hold for <paramref name="observers"/> (nulls skipped).</summary>
    public static HardwareObserver? Combine(params ReadOnlySpan<HardwareObserver?> observers)
    {
        var list = new List<HardwareObserver>();
        foreach (var o in observers)
        {
            if (o is ObserverFanout f) list.AddRange(f._all);
            else if (o is not null) list.Add(o);
        }
        return list.Count switch { 0 => null, 1 => list[0], _ => new ObserverFanout([.. list]) };
    }

    public override void OnDmaIssued(DmaEngine device, DmaRequest request) { foreach (var o in _all) o.OnDmaIssued(device, request); }
    public override void OnTlpSent(DmaEngine device, Tlp tlp, long linkArrivalPs) { foreach (var o in _all) o.OnTlpSent(device, tlp, linkArrivalPs); }
    public override void OnTlpDone(DmaEngine device, Tlp tlp) { foreach (var o in _all) o.OnTlpDone(device, tlp); }
    public override void OnDmaCompleted(DmaEngine device, DmaRequest request) { foreach (var o in _all) o.OnDmaCompleted(device, request); }
    public override void OnLinkTransfer(LinkDirection direction, long startPs, long endPs, int wireBytes, int payloadBytes) { foreach (var o in _all) o.OnLinkTransfer(direction, startPs, endPs, wireBytes, payloadBytes); }
    public override void OnRootComplexArrival(Tlp tlp) { foreach (var o in _all) o.OnRootComplexArrival(tlp); }
    public override void OnMemoryAccess(Tlp tlp, long donePs) { foreach (var o in _all) o.OnMemoryAccess(tlp, donePs); }
    public override void OnCompletionSent(Tlp tlp, long leaveRootComplexPs, long arrivalPs) { foreach (var o in _all) o.OnCompletionSent(tlp, leaveRootComplexPs, arrivalPs); }
    public override void OnIommuAccepted(Tlp tlp, long lookupDonePs) { foreach (var o in _all) o.OnIommuAccepted(tlp, lookupDonePs); }
    public override void OnIotlbMiss(Tlp tlp) { foreach (var o in _all) o.OnIotlbMiss(tlp); }
    public override void OnTranslationFromIotlb(Tlp tlp) { foreach (var o in _all) o.OnTranslationFromIotlb(tlp); }
    public override void OnTranslated(Tlp tlp) { foreach (var o in _all) o.OnTranslated(tlp); }
    public override void OnFault(Tlp tlp, FaultReason reason) { foreach (var o in _all) o.OnFault(tlp, reason); }
    public override void OnPageRequest(Tlp tlp) { foreach (var o in _all) o.OnPageRequest(tlp); }
    public override void OnWalkStarted(int walker, Tlp tlp) { foreach (var o in _all) o.OnWalkStarted(walker, tlp); }
    public override void OnWalkJoined(int walker, Tlp tlp) { foreach (var o in _all) o.OnWalkJoined(walker, tlp); }
    public override void OnWalkRead(int walker, TableStage stage, int level, ulong entryAddress, long issuePs, long donePs) { foreach (var o in _all) o.OnWalkRead(walker, stage, level, entryAddress, issuePs, donePs); }
    public override void OnWalkFinished(int walker, long startPs, int reads, bool faulted) { foreach (var o in _all) o.OnWalkFinished(walker, startPs, reads, faulted); }
    public override void OnInvalidationSubmitted(in InvalidationDescriptor descriptor, long ticket) { foreach (var o in _all) o.OnInvalidationSubmitted(descriptor, ticket); }
    public override void OnInvalidationApplied(in InvalidationDescriptor descriptor, long startPs) { foreach (var o in _all) o.OnInvalidationApplied(descriptor, startPs); }
    public override void OnSmmuAccepted(SmmuTransaction t, long configLookupDonePs) { foreach (var o in _all) o.OnSmmuAccepted(t, configLookupDonePs); }
    public override void OnSmmuConfigRead(SmmuTransaction t, SmmuConfigRead read, ulong address, long donePs) { foreach (var o in _all) o.OnSmmuConfigRead(t, read, address, donePs); }
    public override void OnSmmuConfigFetched(SmmuTransaction t, long startPs, bool joined) { foreach (var o in _all) o.OnSmmuConfigFetched(t, startPs, joined); }
    public override void OnSmmuTlbLookup(SmmuTransaction t, bool hit) { foreach (var o in _all) o.OnSmmuTlbLookup(t, hit); }
    public override void OnSmmuWalkStarted(int walker, SmmuTransaction t) { foreach (var o in _all) o.OnSmmuWalkStarted(walker, t); }
    public override void OnSmmuWalkJoined(int walker, SmmuTransaction t) { foreach (var o in _all) o.OnSmmuWalkJoined(walker, t); }
    public override void OnSmmuFault(SmmuTransaction t, SmmuEventType type, bool stage2, bool recorded, bool stalled) { foreach (var o in _all) o.OnSmmuFault(t, type, stage2, recorded, stalled); }
    public override void OnSmmuResumed(SmmuTransaction t, bool retry) { foreach (var o in _all) o.OnSmmuResumed(t, retry); }
    public override void OnSmmuTranslated(SmmuTransaction t) { foreach (var o in _all) o.OnSmmuTranslated(t); }
    public override void OnSmmuCommand(CommandQueue queue, in SmmuCommand command, long submitPs, long fetchPs) { foreach (var o in _all) o.OnSmmuCommand(queue, command, submitPs, fetchPs); }
    public override void OnSmmuCommandQueueFull(CommandQueue queue, int commands) { foreach (var o in _all) o.OnSmmuCommandQueueFull(queue, commands); }
}
