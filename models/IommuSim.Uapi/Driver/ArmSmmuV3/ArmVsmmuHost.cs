using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// The parts of arm-smmu-v3.c the vIOMMU code (arm-smmu-v3-iommufd.c) calls: the SMMU's ID registers and features,
/// the main command queue, a master's StreamID and a stage-2 domain's VMID (<see cref="IArmSmmuV3Host"/>); the nested
/// STE of a vIOMMU's nested domain (arm_smmu_attach_dev_nested, arm_smmu_make_nested_domain_ste); and the event-queue
/// thread that forwards a guest-owned event to the master's vIOMMU (arm_smmu_evtq_thread → arm_smmu_handle_evt →
/// arm_vmaster_report_event).
/// </summary>
public sealed partial class ArmSmmuV3Driver : IArmSmmuV3Host
{
    object IArmSmmuV3Host.IommuDev => this;

    /// <summary>ARM_SMMU_FEAT_NESTING: the model's SMMU implements stage 1 and stage 2 (IDR0.S1P, S2P).</summary>
    public bool FeatNesting => true;

    /// <summary>ARM_SMMU_FEAT_S2FWB: not in the model (IDR3.FWB = 0; assumption, as on SMMUv3.0/3.1 parts).</summary>
    public bool FeatS2Fwb => false;

    /// <summary>arm_smmu_master_canwbs: a DMA-coherent master.</summary>
    public bool MasterCanwbs(DeviceSpec dev) => dev.CacheCoherent;

    /// <summary>
    /// SMMU_IDR0..5 of the model's SMMU: IDR0 S2P, S1P, TTF AArch64, COHACC, HTTU access+dirty, ATS, ASID16, MSI, PRI,
    /// VMID16, CD2L, ST_LEVEL 2-level; IDR1 SIDSIZE 16, SSIDSIZE 20 and the queue sizes of <c>iommu.smmu.queues</c>;
    /// IDR5 OAS 48 bits, 4K/16K/64K granules. IDR2–4 are 0 (no RIL, no FWB).
    /// </summary>
    public uint ReadIdr(int n)
    {
        var q = Port.Smmu.Options.Queues;
        return n switch
        {
            0 => 1u | (1u << 1) | (2u << 2) | (1u << 4) | (2u << 6) | (1u << 10) | (1u << 12) | (1u << 13) | (1u << 16)
                 | (1u << 18) | (1u << 19) | (1u << 27),
            1 => (uint)SidBits | (20u << 6) | ((uint)q.PriQueueLog2 << 11) | ((uint)q.EventQueueLog2 << 16) | ((uint)q.CommandQueueLog2 << 21),
            5 => 5u | (1u << 4) | (1u << 5) | (1u << 6),
            _ => 0,
        };
    }

    /// <summary>SMMU_IIDR: 0 (no implementer named; assumption).</summary>
    public uint ReadIidr() => 0;

    /// <summary>SMMU_AIDR: SMMUv3.1 (HTTU is a v3.1 feature; assumption).</summary>
    public uint ReadAidr() => 0x01;

    public uint StreamId(DeviceSpec dev) => dev.Rid.Value;

    /// <summary>arm_vsmmu_init's check: a stage-2 domain of this SMMU; its VMID.</summary>
    public bool S2Parent(HwptPaging parent, out ushort vmid)
    {
        vmid = 0;
        if (parent.PagingDomain is not ArmSmmuDomain { Stage: ArmSmmuStage.S2 } d) return false;
        vmid = d.Vmid;
        return true;
    }

    /// <summary>arm_smmu_cmdq_issue_cmdlist on the main queue; with <paramref name="sync"/> a CMD_SYNC waited for.</summary>
    public Errno IssueCmdlist(ReadOnlySpan<SmmuCommand> cmds, bool sync)
    {
        DescriptorCount += cmds.Length;
        if (!sync)
        {
            Port.Post(cmds);
            return Errno.OK;
        }
        FlushCount++;
        Port.SubmitAndSync(cmds);
        return Errno.OK;
    }

    public CommandQueue CreateGuestQueue(ulong basePa, int log2Size) => Port.Smmu.CreateCommandQueue(basePa, log2Size);

    public void WaitForQueue(CommandQueue queue) => Port.RunUntil(() => queue.Cons == queue.Prod || queue.Error);

    /// <summary>The Tegra241 CMDQV of this SMMU, when the platform has one (set by whoever builds the kernel).</summary>
    public Tegra241Cmdqv? Cmdqv { get; set; }

    /// <summary>Events the evtq thread logged for the host (not forwarded to a vIOMMU).</summary>
    public long HostEvents { get; private set; }

    /// <summary>
    /// arm_smmu_evtq_thread + arm_smmu_handle_evt: drains the event queue; an event of a master attached to a
    /// vIOMMU's nested domain with a vDEVICE, that is not a stage-2 fault and not a stall, goes to that vIOMMU's
    /// vEVENTQ with the vSID in it (arm_vmaster_report_event); every other event stays with the host.
    /// </summary>
    public void HandleEvents()
    {
        Span<ulong> d = stackalloc ulong[4];
        while (Port.Smmu.EventQueue.TryRead(out var e))
        {
            if (!e.Stall && !e.Stage2 && _masters.TryGetValue(e.Sid, out var m) && m.RidDomain is ArmSmmuNestedDomain n
                && n.Vsmmu.Core.Vdevs.Values.FirstOrDefault(v => v.Device.Spec == m.Spec) is { } vdev)
            {
                e.Encode(d);
                if (n.Vsmmu.ReportEvent((uint)vdev.VirtId, d) == Errno.OK) continue;
            }
            HostEvents++;
        }
    }

    /// <summary>
    /// arm_smmu_make_nested_domain_ste: a non-valid vSTE or Config abort → an abort STE; bypass → the stage-2 STE of
    /// the parent; S1_TRANS → a nested STE: the parent's stage 2 (VMID, S2TTB) with the guest's S1ContextPtr, S1Fmt,
    /// S1CDMax and S1DSS, EATS when the guest asked for ATS and the master has it.
    /// </summary>
    internal StreamTableEntry NestedSte(ArmSmmuMaster m, ArmSmmuNestedDomain n)
    {
        var p = (ArmSmmuDomain)n.ParentDomain;
        var s2 = new StreamTableEntry
        {
            Valid = true, Config = SteConfig.Stage2, S2Vmid = p.Vmid, S2T0Sz = (byte)(64 - p.Table.InputBits),
            S2Sl0 = StreamTableEntry.EncodeSl0(p.Table.Granule, p.Table.StartLevel), S2Granule = p.Table.Granule, S2Ps = 5,
            S2Aa64 = true, S2HardwareAccess = p.DirtyCapable, S2HardwareDirty = p.DirtyCapable, S2Record = true, S2Ttb = p.Table.Root,
            Eats = m.AtsEnabled ? (byte)1 : (byte)0,
        };
        return n.Cfg switch
        {
            ArmVsmmuUserData.STRTAB_STE_0_CFG_S1_TRANS => s2 with
            {
                Config = SteConfig.Nested, S1ContextPtr = n.S1ContextPtr, S1Fmt = n.S1Fmt, S1CdMax = n.S1CdMax, S1Dss = n.S1Dss,
                Eats = n.EnableAts && m.AtsEnabled ? (byte)1 : (byte)0,
            },
            ArmVsmmuUserData.STRTAB_STE_0_CFG_BYPASS => s2,
            _ => AbortSte,
        };
    }

    /// <summary>arm_smmu_attach_dev_nested's checks: the vIOMMU is this SMMU's (EINVAL) and no PASID uses the master's
    /// CD table (EBUSY); a translating vSTE needs a vDEVICE for the master (arm_smmu_attach_prepare_vmaster: ENOENT).</summary>
    internal Errno CheckNestedAttach(ArmSmmuMaster m, ArmSmmuNestedDomain n)
    {
        if (!ReferenceEquals(n.Vsmmu.Smmu, this)) return Errno.EINVAL;
        if (m.Pasids.Count > 0) return Errno.EBUSY;
        bool hasVdev = n.Vsmmu.Core.Vdevs.Values.Any(v => v.Device.Spec == m.Spec);
        if (!hasVdev && n.Cfg is not (ArmVsmmuUserData.STRTAB_STE_0_CFG_ABORT or ArmVsmmuUserData.STRTAB_STE_0_CFG_BYPASS)) return Errno.ENOENT;
        return Errno.OK;
    }
}
