using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// The parts of arm-smmu-v3.c the vIOMMU code (arm-smmu-v3-iommufd.c) calls: the SMMU's ID registers and features,
/// the main command queue, a master's StreamID and a stage-2 domain's VMID (<see cref="IArmSmmuV3Host"/>); the nested
/// domain of a vIOMMU and its attach checks (arm_smmu_attach_dev_nested); and the event-queue
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
    /// IDR3 RIL (bit 10) as <c>iommu.smmu.rangeInvalidation</c> says (FWB and the rest 0); IDR5 OAS 48 bits,
    /// 4K/16K/64K granules. IDR2 and IDR4 are 0.
    /// </summary>
    public uint ReadIdr(int n)
    {
        var q = Port.Smmu.Options.Queues;
        return n switch
        {
            0 => 1u | (1u << 1) | (2u << 2) | (1u << 4) | (2u << 6) | (1u << 10) | (1u << 12) | (1u << 13) | (1u << 16)
                 | (1u << 18) | (1u << 19) | (1u << 27),
            1 => (uint)SidBits | (20u << 6) | ((uint)q.PriQueueLog2 << 11) | ((uint)q.EventQueueLog2 << 16) | ((uint)q.CommandQueueLog2 << 21),
            3 => Port.Smmu.Options.RangeInvalidation ? Idr3Ril : 0,
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
        if (_deferInto is not null)
        {
            // A trapped guest invalidation on the run-time path: gathered for the driver CPU, which submits it with
            // its CMD_SYNC and waits in simulated time (SmmuGuestStage1Target). One CMD_SYNC closes all batches.
            _deferInto.AddRange(cmds);
            return Errno.OK;
        }
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
            if (ReportStall(e)) continue; // a stalled transaction of a stall-enabled master: to iopf (ArmSmmuV3Driver.Iopf.cs)
            if (!e.Stall && !e.Stage2 && _masters.TryGetValue(e.Sid, out var m) && m.RidDomain is ArmSmmuNestedDomain { Vsmmu: not null } n
                && n.Vsmmu.Core.Vdevs.Values.FirstOrDefault(v => v.Device.Spec == m.Spec) is { } vdev)
            {
                e.Encode(d);
                if (n.Vsmmu.ReportEvent((uint)vdev.VirtId, d) == Errno.OK) continue;
            }
            HostEvents++;
        }
    }

    /// <summary>
    /// arm_vsmmu_alloc_domain_nested's domain: the vSTE words (EATS set back to TRANS when the guest asked for ATS,
    /// as arm_smmu_make_nested_domain_ste sets it from enable_ats) over the vIOMMU's stage-2 parent.
    /// </summary>
    public Errno AllocNestedDomain(ArmVsmmu vsmmu, ulong ste0, ulong ste1, bool enableAts, out IommuNestedDomain? domain)
    {
        domain = null;
        if (vsmmu.Core.Hwpt.PagingDomain is not ArmSmmuDomain parent) return Errno.EINVAL;
        ulong eats = enableAts ? (ulong)ArmVsmmuUserData.STRTAB_STE_1_EATS_TRANS << 28 : 0;
        Errno rc = AllocNestedDomain(parent, [ste0, ste1 | eats], out var nested);
        if (rc != Errno.OK) return rc;
        nested!.Vsmmu = vsmmu;
        domain = nested;
        return Errno.OK;
    }

    /// <summary>arm_smmu_attach_dev_nested's checks for a vIOMMU's domain: the vIOMMU is this SMMU's (EINVAL); a
    /// translating vSTE needs a vDEVICE for the master (arm_smmu_attach_prepare_vmaster: iommufd_viommu_get_vdev_id's ENOENT).</summary>
    internal Errno CheckNestedAttach(ArmSmmuMaster m, ArmSmmuNestedDomain n)
    {
        if (!ReferenceEquals(n.Vsmmu!.Smmu, this)) return Errno.EINVAL;
        bool hasVdev = n.Vsmmu.Core.Vdevs.Values.Any(v => v.Device.Spec == m.Spec);
        if (!hasVdev && n.GuestSte.Config is not (SteConfig.Abort or SteConfig.Bypass)) return Errno.ENOENT;
        return Errno.OK;
    }
}
