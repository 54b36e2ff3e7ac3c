using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// Nested on SMMUv3, per-request mapping by the guest's DMA API: the guest arm-smmu-v3 driver edits its own VMSAv8-64
/// stage-1 table (a map needs no invalidation: arm_smmu_map_pages issues none) and, on unmap, invalidates as
/// arm_smmu_iotlb_sync → arm_smmu_tlb_inv_range_domain (leaf) → __arm_smmu_tlb_inv_range does
/// (<see cref="ArmSmmuV3Driver.AddTlbiRange"/>): range TLBI_NH_VAs (TG, SCALE, NUM, TTL) when the vIOMMU's SMMU_IDR3
/// (GET_HW_INFO, which a VMM copies into its virtual SMMU) has RIL, else one TLBI_NH_VA (ASID, leaf) per 4 KiB page,
/// then CMD_SYNC; a lazy flush (arm_smmu_tlb_inv_context) is one TLBI_NH_ASID. Where the commands go:
/// <list type="bullet">
/// <item>trapped (an ARM_SMMUV3 vIOMMU): the guest's queue is emulated by the VMM; the write to its PROD register is
/// a VM exit, and the VMM forwards the commands with IOMMU_HWPT_INVALIDATE on the vIOMMU (arm_vsmmu_cache_invalidate:
/// VMID forced, then the host's main command queue). The trap (<c>vmExitNs</c> + <c>ioctlNs</c>) is the target's
/// invalidate overhead; the host's commands are gathered (<see cref="ArmSmmuV3Driver.DeferFlushes"/>) and submitted
/// with their CMD_SYNC in simulated time.</item>
/// <item>guest-owned hardware queue (a TEGRA241_CMDQV vIOMMU, IOMMU_HW_QUEUE_ALLOC): the guest writes the commands
/// and a CMD_SYNC into its VCMDQ and PROD to its VINTF page; the SMMU consumes them directly (the VINTF forces the
/// VMID), no VM exit and no host kernel (<see cref="SmmuVcmdqGather"/>).</item>
/// </list>
/// Buffers are guest-physical (the window); the guest's table pages are the guest's own.
/// </summary>
internal sealed class SmmuGuestStage1Target : WindowedTarget
{
    private readonly IommufdContext _ictx;
    private readonly ArmVsmmuGuest _guest;
    private readonly uint _viommuId;
    private readonly ushort _vmid;
    private readonly ArmSmmuV3Driver _driver;
    private readonly Tegra241Vcmdq? _vcmdq;
    private readonly Func<uint, (bool Found, uint Sid)> _vsidToSid;
    // The guest's commands as raw words (the HWPT_INVALIDATE array; grown once to the largest unmap), reused.
    private IommuViommuArmSmmuv3Invalidate[] _user = new IommuViommuArmSmmuv3Invalidate[16];
    private readonly IommuHwptInvalidate _cmd = new();
    // The guest driver's commands before encoding (reused) and ARM_SMMU_FEAT_RANGE_INV of the guest's (virtual) SMMU.
    private readonly List<SmmuCommand> _guestCmds = [];
    private readonly bool _rangeInv;

    public SmmuGuestStage1Target(IommufdContext ictx, ArmVsmmuGuest guest, uint viommuId, Tegra241Vcmdq? vcmdq, MappingWindow window) : base(window)
    {
        _ictx = ictx;
        _guest = guest;
        _viommuId = viommuId;
        var viommu = (Viommu)ictx.Lookup(viommuId)!;
        var vsmmu = (ArmVsmmu)viommu.DriverData!;
        _vmid = vsmmu.Vmid;
        _rangeInv = (vsmmu.Smmu.ReadIdr(3) & ArmSmmuV3Driver.Idr3Ril) != 0;
        _driver = (ArmSmmuV3Driver)ictx.Kernel.Driver;
        _vcmdq = vcmdq;
        _vsidToSid = vcmdq is null ? _ => (false, 0u) : vsid => vcmdq.Vintf.TryMatchSid(vsid, out uint sid) ? (true, sid) : (false, 0u);
    }

    /// <summary>TLB entries of the guest's translations carry the guest's ASID (under the vIOMMU's VMID).</summary>
    public override ushort DomainId => _guest.Asid;

    public override IotlbGather CreateGather()
        => _vcmdq is null ? new SmmuIotlbGather(_driver.Port, _vmid, _guest.Asid) : new SmmuVcmdqGather(_vcmdq.Queue, _driver.Port, _vmid, _guest.Asid);

    public override void Map(ulong iova, ulong output, ulong bytes, Access access, IotlbGather flush)
        => _guest.Stage1.Map(iova, output, bytes, access, maxLeafShift: 12);

    public override void Unmap(ulong iova, ulong bytes, IotlbGather? flush, List<ulong> freedTablePages)
    {
        _guest.Stage1.Unmap(iova, bytes);
        if (flush is null) return; // a lazy guest invalidates later, ASID-wide
        ulong first = iova & ~0xFFFUL, size = ((iova + bytes + 0xFFF) & ~0xFFFUL) - first;
        _guestCmds.Clear();
        ArmSmmuV3Driver.AddTlbiRange(_guestCmds, new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Asid = _guest.Asid, Leaf = true },
            first, size, granuleShift: 12, tgShift: 12, _rangeInv);
        int n = _guestCmds.Count;
        if (_user.Length < n) _user = new IommuViommuArmSmmuv3Invalidate[Math.Max(n, 2 * _user.Length)];
        for (int i = 0; i < n; i++) _user[i] = Raw(_guestCmds[i]);
        Send(n, flush);
    }

    public override void AddDomainInvalidation(IotlbGather into)
    {
        _user[0] = Raw(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAsid, Asid = _guest.Asid });
        Send(1, into);
    }

    /// <summary>The guest's table pages are the guest's to free; no host table is edited here.</summary>
    public override void PutTablePages(List<ulong> pages) => pages.Clear();

    private static IommuViommuArmSmmuv3Invalidate Raw(SmmuCommand c)
    {
        c.Encode(out ulong c0, out ulong c1);
        return new IommuViommuArmSmmuv3Invalidate { cmd0 = c0, cmd1 = c1 };
    }

    private void Send(int n, IotlbGather into)
    {
        if (_vcmdq is not null)
        {
            // The VINTF rewrites each command as the hardware takes it (VMID forced; SID_MATCH → SID_REPLACE).
            var g = (SmmuVcmdqGather)into;
            for (int i = 0; i < n; i++)
            {
                ulong c0 = _user[i].cmd0, c1 = _user[i].cmd1;
                var rc = ArmVsmmuUserData.ConvertUserCmd(ref c0, ref c1, _vcmdq.Vintf.Vmid, _vsidToSid);
                if (rc != Errno.OK) throw new InvalidOperationException($"the VINTF refused a guest command ({rc})");
                g.Commands.Add(SmmuCommand.Decode(c0, c1));
            }
            return;
        }
        // Trapped: the VMM's IOMMU_HWPT_INVALIDATE on the vIOMMU; the host's commands land in the gather.
        _cmd.hwpt_id = _viommuId;
        _cmd.data_type = IommuHwptInvalidateDataType.VIOMMU_ARM_SMMUV3;
        _cmd.entry_len = 16;
        _cmd.entry_num = (uint)n;
        _cmd.data_arm_smmuv3 = _user;
        Errno err;
        using (_driver.DeferFlushes(((SmmuIotlbGather)into).Commands)) err = _ictx.HwptInvalidate(_cmd);
        if (err != Errno.OK) throw new InvalidOperationException($"IOMMU_HWPT_INVALIDATE on vIOMMU {_viommuId} failed with {err} after {_cmd.entry_num} commands");
    }
}
