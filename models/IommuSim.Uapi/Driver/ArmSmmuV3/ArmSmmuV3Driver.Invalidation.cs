using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

public sealed partial class ArmSmmuV3Driver
{
    /// <summary>
    /// iotlb_sync after an unmap of leaves of 2^<paramref name="granuleShift"/> bytes (arm_smmu_iotlb_sync →
    /// arm_smmu_tlb_inv_range_domain with the gather's pgsize, leaf): TLBIs by address — TLBI_NH_VA tagged with the
    /// ASID for stage 1, TLBI_S2_IPA with the VMID for stage 2 — as <see cref="AddTlbiRange"/> builds them (range
    /// commands with SMMU_IDR3.RIL, else one per granule, else one TLBI_NH_ASID / TLBI_S12_VMALL when the range is too
    /// big); for a nest parent also TLBI_NH_ALL of its VMID ("when the S2 domain changes all the nested S1 ASIDs have
    /// to be flushed too"; skipped after a TLBI_S12_VMALL, which flushed them); then ATC_INV for every attachment of an
    /// ATS master (arm_smmu_atc_inv_domain), then CMD_SYNC, waited for.
    /// </summary>
    internal void InvalidateRange(ArmSmmuDomain d, ulong iova, ulong length, int granuleShift = 12)
    {
        ulong start = iova & ~0xFFFUL;
        ulong bytes = ((iova + length + 0xFFF) & ~0xFFFUL) - start;
        var tlbi = d.Stage == ArmSmmuStage.S1
            ? new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Asid = d.Asid, Leaf = true }
            : new SmmuCommand { Opcode = SmmuOpcode.TlbiS2Ipa, Vmid = d.Vmid, Leaf = true };
        bool wholeTag = AddTlbiRange(_cmds, tlbi, start, bytes, granuleShift, tgShift: 12, FeatRangeInv);
        if (d.Stage == ArmSmmuStage.S2 && d.NestParent && !wholeTag)
            _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAll, Vmid = d.Vmid });
        uint pages = (uint)Math.Min(bytes >> 12, uint.MaxValue);
        AddAtcInvalidations(d, start, pages);
        Sync();
    }

    /// <summary>ARM_SMMU_FEAT_RANGE_INV: SMMU_IDR3.RIL as arm_smmu_device_hw_probe reads it.</summary>
    public bool FeatRangeInv => (ReadIdr(3) & Idr3Ril) != 0;

    /// <summary>SMMU_IDR3.RIL (IDR3_RIL, bit 10): range invalidation.</summary>
    public const uint Idr3Ril = 1u << 10;

    /// <summary>CMDQ_TLBI_RANGE_NUM_MAX: the NUM field's largest count.</summary>
    public const int CmdqTlbiRangeNumMax = 31;

    /// <summary>
    /// The TLBIs for [iova, iova + size) of leaves of 2^<paramref name="granuleShift"/> bytes, appended to
    /// <paramref name="into"/> from <paramref name="template"/> (opcode, tag, leaf). Follows __arm_smmu_tlb_inv_range
    /// (v6.17) with the size check of arm_smmu_inv_size_too_big:
    /// <list type="bullet">
    /// <item>with RIL: TG from the smallest page size (<paramref name="tgShift"/>: 12, 14, 16 → 1, 2, 3), TTL =
    /// 4 − (log2 granule − 3) / (tg − 3) for a leaf invalidation (a non-leaf one leaves TTL 0 and avoids NUM = SCALE = 0
    /// by adding a page); then while the range lasts, SCALE = the lowest set bit of the pages left, NUM + 1 = the next
    /// five bits' count of 2^SCALE blocks: one command per five-bit group of the page count;</item>
    /// <item>without RIL: one command per granule (TG = TTL = 0), unless size ≥ (granule / 8) × granule
    /// (arm_smmu_inv_size_too_big, MAX_TLBI_OPS borrowed from arm64's tlbflush.h: 512 commands for 4 KiB), when one
    /// TLBI_NH_ASID (stage 1) or TLBI_S12_VMALL (stage 2) replaces them. Returns true then.</item>
    /// </list>
    /// Allocates nothing beyond the list's growth.
    /// </summary>
    public static bool AddTlbiRange(List<SmmuCommand> into, SmmuCommand template, ulong iova, ulong size, int granuleShift, int tgShift, bool ril)
    {
        if (size == 0) return false;
        if (!ril && size >> granuleShift >= 1UL << (granuleShift - 3))
        {
            into.Add(template.Opcode == SmmuOpcode.TlbiS2Ipa
                ? new SmmuCommand { Opcode = SmmuOpcode.TlbiS12Vmall, Vmid = template.Vmid }
                : new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAsid, Vmid = template.Vmid, Asid = template.Asid });
            return true;
        }
        ulong end = iova + size, invRange = 1UL << granuleShift, numPages = 0;
        var cmd = template with { Num = 0, Scale = 0, Tg = 0, Ttl = 0 };
        if (ril)
        {
            numPages = size >> tgShift;
            cmd = cmd with { Tg = (byte)((tgShift - 10) / 2) };
            if (cmd.Leaf) cmd = cmd with { Ttl = (byte)(4 - (granuleShift - 3) / (tgShift - 3)) };
            else if ((numPages & CmdqTlbiRangeNumMax) == 1) numPages++;
        }
        while (iova < end)
        {
            if (ril)
            {
                if (numPages == 0) break; // a size that is not a whole number of TG pages: nothing left to name
                int scale = System.Numerics.BitOperations.TrailingZeroCount(numPages);
                ulong num = (numPages >> scale) & CmdqTlbiRangeNumMax;
                cmd = cmd with { Scale = (byte)scale, Num = (byte)(num - 1) };
                invRange = num << (scale + tgShift);
                numPages -= num << scale;
            }
            into.Add(cmd with { Address = iova });
            iova += invRange;
        }
        return false;
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
    public void GatherInvalidateRange(ArmSmmuDomain d, ulong iova, ulong length, List<SmmuCommand> into, int granuleShift = 12)
    {
        using (DeferFlushes(into)) InvalidateRange(d, iova, length, granuleShift);
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
        // Index loops: foreach over the IReadOnlyList would box an enumerator on every unmap of the run-time path.
        var attached = d.Attachments;
        for (int i = 0; i < attached.Count; i++)
        {
            var (dev, pasid) = attached[i];
            if (dev.Ats) _cmds.Add(AtcInv(dev.Rid.Value, pasid, start, pages));
        }
        // A nest parent's change reaches devices through its nested domains; their ATCs hold guest IOVAs, so all of it goes.
        var children = d.Children;
        for (int c = 0; c < children.Count; c++)
        {
            var nested = children[c].Attachments;
            for (int i = 0; i < nested.Count; i++)
            {
                var (dev, pasid) = nested[i];
                if (dev.Ats) _cmds.Add(AtcInv(dev.Rid.Value, pasid, 0, 0));
            }
        }
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
