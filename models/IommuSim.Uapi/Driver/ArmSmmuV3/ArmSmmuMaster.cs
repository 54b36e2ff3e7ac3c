using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// struct arm_smmu_master: one PCI function behind the SMMU: its StreamID (the requester ID, as
/// iort/of_xlate number PCI functions), its CD table once a stage-1 domain or a PASID needs one
/// (arm_smmu_alloc_cd_tables: S1CDMax from the device's PASID width, two-level when it has more
/// than CTXDESC_L2_ENTRIES = 1024 SSIDs), whether ATS is on, and the domains attached to its RID and PASIDs.
/// </summary>
public sealed class ArmSmmuMaster(DeviceSpec spec)
{
    /// <summary>CTXDESC_L2_ENTRIES: CDs in one leaf of a two-level CD table.</summary>
    public const int CdL2Entries = 1024;

    public DeviceSpec Spec { get; } = spec;
    public uint Sid => Spec.Rid.Value;
    /// <summary>master->ats_enabled (arm_smmu_ats_supported: the function has ATS and the SMMU too).</summary>
    public bool AtsEnabled => Spec.Ats;
    public ContextDescriptorTable? CdTable { get; internal set; }
    /// <summary>What the RID (SSID 0 / no PASID) is attached to: null = blocked.</summary>
    public IommuDomain? RidDomain { get; internal set; }
    /// <summary>Stage-1 domains attached to PASIDs (SSID ≥ 1).</summary>
    public Dictionary<uint, ArmSmmuDomain> Pasids { get; } = [];

    /// <summary>master->stall_enabled (arm_smmu_probe_device: the firmware's "dma-can-stall", on an SMMU with stalls):
    /// its faults stall (CD.S, STE.S1STALLD clear) and are resumed with CMD_RESUME. PCIe functions never stall.</summary>
    public bool StallEnabled { get; set; }

    /// <summary>S1CDMax: SSID bits the master's CD table covers (at least 1 so SSID 0 and PASIDs share it).</summary>
    public int S1CdMax => Math.Clamp(Spec.PasidBits, 1, 20);
}
