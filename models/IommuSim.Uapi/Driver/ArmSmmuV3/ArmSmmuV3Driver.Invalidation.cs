using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

public sealed partial class ArmSmmuV3Driver
{
    /// <summary>
    /// iotlb_sync after an unmap (arm_smmu_tlb_inv_range_domain): one range TLBI by address — TLBI_NH_VA
    /// tagged with the ASID for stage 1, TLBI_S2_IPA with the VMID for stage 2 — leaf-only, since
    /// io-pgtable-arm's unmap frees no table; for a nest parent also TLBI_NH_ALL of its VMID ("when the
    /// S2 domain changes all the nested S1 ASIDs have to be flushed too"); then ATC_INV for every
    /// attachment of an ATS master (arm_smmu_atc_inv_domain), then CMD_SYNC, waited for.
    /// The model's SMMU has range invalidation (SMMU_IDR3.RIL), so one command covers the range.
    /// </summary>
    internal void InvalidateRange(ArmSmmuDomain d, ulong iova, ulong length)
    {
        uint pages = (uint)Math.Min(((iova & 0xFFF) + length + 0xFFF) >> 12, uint.MaxValue);
        ulong start = iova & ~0xFFFUL;
        if (d.Stage == ArmSmmuStage.S1)
            _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Asid = d.Asid, Address = start, Pages = pages, Leaf = true });
        else
        {
            _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.TlbiS2Ipa, Vmid = d.Vmid, Address = start, Pages = pages, Leaf = true });
            if (d.NestParent) _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAll, Vmid = d.Vmid });
        }
        AddAtcInvalidations(d, start, pages);
        Sync();
    }

    private List<SmmuCommand>? _deferInto;

    /// <summary>
    /// Until the returned scope is disposed, the commands a sync would send are appended to <paramref name="into"/>
    /// instead of being submitted and waited for here (the iommu_iotlb_gather of an unmap made by a driver CPU
    /// inside a simulated-time event): the caller adds the CMD_SYNC and waits asynchronously.
    /// </summary>
    public DeferredFlushes DeferFlushes(List<SmmuCommand> into)
    {
        if (_deferInto is not null) throw new InvalidOperationException("flushes are already being deferred");
        _deferInto = into;
        return new DeferredFlushes(this);
    }

    /// <summary>The scope of <see cref="DeferFlushes"/>.</summary>
    public readonly struct DeferredFlushes(ArmSmmuV3Driver driver) : IDisposable
    {
        public void Dispose() => driver._deferInto = null;
    }

    /// <summary>A lazy flush of <paramref name="d"/> (arm_smmu_tlb_inv_context, as the flush queue's
    /// iommu_flush_iotlb_all calls it), gathered into <paramref name="into"/> without the CMD_SYNC.</summary>
    public void GatherInvalidateAll(ArmSmmuDomain d, List<SmmuCommand> into)
    {
        using (DeferFlushes(into))
        {
            AddInvalidateAll(d);
            Sync();
        }
    }

    /// <summary>Range invalidation of [iova, iova+length) of <paramref name="d"/> (arm_smmu_tlb_inv_range_domain), gathered
    /// into <paramref name="into"/> without the CMD_SYNC: a traced unmap of a range this model never mapped still flushes.</summary>
    public void GatherInvalidateRange(ArmSmmuDomain d, ulong iova, ulong length, List<SmmuCommand> into)
    {
        using (DeferFlushes(into)) InvalidateRange(d, iova, length);
    }

    /// <summary>Everything the domain's tag may have cached (arm_smmu_tlb_inv_context): TLBI_NH_ASID or TLBI_S12_VMALL, plus ATCs.</summary>
    private void AddInvalidateAll(ArmSmmuDomain d)
    {
        _cmds.Add(d.Stage == ArmSmmuStage.S1
            ? new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAsid, Asid = d.Asid }
            : new SmmuCommand { Opcode = SmmuOpcode.TlbiS12Vmall, Vmid = d.Vmid });
        AddAtcInvalidations(d, 0, 0);
    }

    private void AddAtcInvalidations(ArmSmmuDomain d, ulong start, uint pages)
    {
        foreach (var (dev, pasid) in d.Attachments)
            if (dev.Ats) _cmds.Add(AtcInv(dev.Rid.Value, pasid, start, pages));
        // A nest parent's change reaches devices through its nested domains; their ATCs hold guest IOVAs, so all of it goes.
        foreach (var child in d.Children)
            foreach (var (dev, pasid) in child.Attachments)
                if (dev.Ats) _cmds.Add(AtcInv(dev.Rid.Value, pasid, 0, 0));
    }

    /// <summary>
    /// CMD_ATC_INV for [start, start + pages × 4 KiB) (arm_smmu_atc_inv_to_cmd): the smallest naturally aligned
    /// power-of-two span covering the range; pages = 0 invalidates the whole ATC (ATC_INV_SIZE_ALL = 52).
    /// </summary>
    internal static SmmuCommand AtcInv(uint sid, uint ssid, ulong start, uint pages)
    {
        uint log2 = 52;
        ulong address = 0;
        if (pages > 0)
        {
            ulong first = start >> 12, last = first + pages - 1;
            log2 = 0;
            while ((first >> (int)log2) != (last >> (int)log2)) log2++;
            address = (first >> (int)log2) << (int)(log2 + 12);
        }
        return new SmmuCommand { Opcode = SmmuOpcode.AtcInv, Sid = sid, SubstreamValid = ssid != 0, Ssid = ssid, Address = address, Pages = log2 };
    }
}
