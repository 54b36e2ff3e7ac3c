namespace IommuSim.Simulation.Config;

public static partial class ConfigValidator
{
    /// <summary>
    /// iommu.architecture = smmuv3: every design and mapping mode runs (docs/smmuv3.md). Provisioning goes through
    /// the arm-smmu-v3 driver model (passthrough; single-stage by kernel, iommufd and vfio-container; nested through
    /// the SMMUv3 vIOMMU; shadow through an IOAS), and so does run-time DMA-API mapping (per-request,
    /// map-per-packet/io, kernel traces: TLBI + CMD_SYNC through the neutral gather; shadow's VMM mirrors into its
    /// IOAS the same way), and demand paging (the PRI queue and CMD_PRI_RESP, docs/smmuv3.md "Demand paging") when the
    /// driver model reports page requests to iopf (iommu.smmu.driverPri = iopf; mainline Linux denies them).
    /// </summary>
    private static void ValidateSmmuPath(SimulationConfig c, List<string> errors)
    {
        if (c.Translation.Viommu.HwQueue)
        {
            // IOMMU_HW_QUEUE_ALLOC exists for the Tegra241 CMDQV only (tegra241_cmdqv_init_vintf_user), on a nested guest.
            if (!c.Iommu.IsSmmu || !c.Iommu.Smmu.Tegra241Cmdqv)
                errors.Add("translation:viommu:hwQueue = true: a guest-owned command queue needs iommu:architecture = smmuv3 with iommu:smmu:tegra241Cmdqv = true");
            if (c.Translation.Design != "nested")
                errors.Add($"translation:viommu:hwQueue = true: only design nested has a vIOMMU (design = {c.Translation.Design})");
        }
        if (c.Iommu.IsSmmu && c.Iommu.Smmu.DriverPri == "deny")
            for (int i = 0; i < c.Devices.Count; i++)
                if (c.Devices[i].Attach.DemandPaging)
                    errors.Add($"devices:{i}:attach:demandPaging = true: mainline arm-smmu-v3 answers every PRI page request DENY " +
                               "(arm_smmu_handle_ppr), so nothing is ever paged in; set iommu:smmu:driverPri = iopf to model the arm-smmu-v3 SVA/PRI patch series");
    }
}
