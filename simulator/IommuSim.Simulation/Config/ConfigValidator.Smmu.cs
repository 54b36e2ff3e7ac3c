namespace IommuSim.Simulation.Config;

public static partial class ConfigValidator
{
    /// <summary>
    /// iommu.architecture = smmuv3: what the SMMUv3 path runs today (docs/smmuv3.md). Provisioning goes through
    /// the arm-smmu-v3 driver model (passthrough, single-stage by kernel, iommufd and vfio-container), and so does
    /// run-time DMA-API mapping (per-request, map-per-packet/io, kernel traces: TLBI + CMD_SYNC through the
    /// neutral gather). Nested and shadow need the SMMUv3 vIOMMU, and demand paging the IOPF path with
    /// PRI_RESP: refused here, naming the key, rather than run on a model that would translate nothing.
    /// </summary>
    private static void ValidateSmmuPath(SimulationConfig c, List<string> errors)
    {
        if (!c.Iommu.IsSmmu) return;
        const string why = "is not modelled on iommu:architecture = smmuv3 yet (docs/smmuv3.md, Status)";
        if (c.Translation.Design is "nested" or "shadow")
            errors.Add($"translation:design = {c.Translation.Design}: {why}; use off, passthrough or single-stage");
        for (int i = 0; i < c.Devices.Count; i++)
            if (c.Devices[i].Attach.DemandPaging) errors.Add($"devices:{i}:attach:demandPaging = true: I/O page faults {why}");
    }
}
