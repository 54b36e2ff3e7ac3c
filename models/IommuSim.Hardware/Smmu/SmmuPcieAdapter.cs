using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Pcie;
using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Hardware.Smmu;

/// <summary>
/// Puts an SMMUv3 on the PCIe path: a TLP becomes a transaction with StreamID = requester ID (as
/// Linux's arm-smmu-v3 numbers PCI functions) and SubstreamID = PASID, and its result goes back
/// into the TLP in the VT-d model's terms (physical address, fault reason, walk reads), so the root
/// complex, the devices and the statistics do not depend on the architecture. Transactions are
/// pooled: nothing is allocated per TLP.
/// </summary>
public sealed class SmmuPcieAdapter : ITranslationAgent, ISmmuClient
{
    private readonly SmmuUnit _smmu;
    private readonly Stack<SmmuTransaction> _pool = new();

    public SmmuPcieAdapter(SmmuUnit smmu)
    {
        _smmu = smmu;
        smmu.Client = this;
        for (int i = 0; i < smmu.Options.TranslationSlots; i++) _pool.Push(new SmmuTransaction());
    }

    public SmmuUnit Smmu => _smmu;
    public ITranslationSink? Sink { get; set; }
    public long PageRequestsLost { get; private set; }

    public bool TryAccept(Tlp tlp)
    {
        var t = _pool.Count > 0 ? _pool.Pop() : new SmmuTransaction();
        t.Reset();
        t.Sid = tlp.RequesterId;
        t.HasSsid = tlp.HasPasid;
        t.Ssid = tlp.Pasid;
        t.Address = tlp.Address;
        t.Access = tlp.Access;
        t.Packet = tlp;
        if (_smmu.TryAccept(t)) return true;
        t.Packet = null;
        _pool.Push(t);
        return false;
    }

    public void RecordPageRequest(Tlp tlp)
    {
        var r = new PriRequest(tlp.RequesterId, tlp.Pasid, tlp.HasPasid, (ushort)tlp.PageGroupIndex, true, !tlp.IsWrite, tlp.IsWrite,
            tlp.Address & ~0xFFFUL);
        if (!_smmu.RecordPageRequest(r)) PageRequestsLost++;
    }

    void ISmmuClient.OnTranslated(SmmuTransaction t)
    {
        var tlp = t.Packet!;
        t.Packet = null;
        tlp.PhysicalAddress = t.OutputAddress;
        tlp.Faulted = t.Faulted;
        tlp.FaultReason = Reason(t);
        tlp.WalkReads = t.WalkReads;
        tlp.IotlbHit = t.TlbHit;
        _pool.Push(t);
        Sink?.OnTranslated(tlp);
    }

    void ISmmuClient.OnSlotFree() => Sink?.OnInputQueueSpace();

    /// <summary>The VT-d model's fault reason closest to an SMMU event type (results keep one vocabulary).</summary>
    public static FaultReason Reason(SmmuTransaction t) => t.Fault switch
    {
        SmmuEventType.BadStreamId or SmmuEventType.BadSte or SmmuEventType.StreamDisabled => FaultReason.ContextNotPresent,
        SmmuEventType.BadSubstreamId or SmmuEventType.BadCd => FaultReason.PasidNotValid,
        SmmuEventType.AddressSize => FaultReason.AddressWidth,
        SmmuEventType.Permission => FaultReason.Permission,
        _ => t.FaultInStage2 ? FaultReason.SecondStageNotPresent : FaultReason.FirstStageNotPresent,
    };
}
