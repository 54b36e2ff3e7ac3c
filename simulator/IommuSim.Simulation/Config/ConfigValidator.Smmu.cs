namespace IommuSim.Simulation.Config;

public static partial class ConfigValidator
{
    /// <summary>
    /// iommu.architecture = smmuv3: what the SMMUv3 path runs today (docs/smmuv3.md). Provisioning goes through
    /// the arm-smmu-v3 driver model (passthrough; single-stage by kernel, iommufd and vfio-container; nested through
    /// the SMMUv3 vIOMMU; shadow through an IOAS), and so does run-time DMA-API mapping (per-request,
    /// map-per-packet/io, kernel traces: TLBI + CMD_SYNC through the neutral gather). Shadow's run-time mirroring (and so
    /// demand paging with shadow) is refused here, naming the key, rather than run on a model that
    /// would translate nothing.
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
        if (!c.Iommu.IsSmmu) return;
        const string why = "is not modelled on iommu:architecture = smmuv3 yet (docs/smmuv3.md, Status)";
        // shadow on SMMUv3 runs premapped regions only: the VMM's run-time IOAS_MAP mirroring (ShadowTarget) flushes
        // through the VT-d driver.
        if (c.Translation.Design == "shadow")
            for (int i = 0; i < c.Workloads.Count; i++)
            {
                var w = c.Workloads[i];
                string? key = w.Mapping == "per-request" ? $"mapping = {w.Mapping}"
                    : w.IsNic && w.Nic.BufferPolicy != "recycle" ? $"nic:bufferPolicy = {w.Nic.BufferPolicy}"
                    : w.Type == "nvme" && w.Nvme.BufferPolicy != "recycle" ? $"nvme:bufferPolicy = {w.Nvme.BufferPolicy}"
                    : w.Type == "kernel-trace" ? "type = kernel-trace" : null;
                if (key is not null) errors.Add($"workloads:{i}:{key}: run-time mapping with translation:design = shadow {why} (premapped regions only)");
            }
        // Demand paging runs through the arm-smmu-v3 IOPF path (PRI queue, CMD_PRI_RESP); with shadow the fault handler
        // maps into the VMM's shadow IOAS, whose run-time mirroring is the part refused above.
        if (c.Translation.Design == "shadow")
            for (int i = 0; i < c.Devices.Count; i++)
                if (c.Devices[i].Attach.DemandPaging)
                    errors.Add($"devices:{i}:attach:demandPaging = true: I/O page faults with translation:design = shadow {why}");
    }
}
