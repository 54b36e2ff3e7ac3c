using System.Text.RegularExpressions;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Simulation.Config;

/// <summary>Range and consistency checks across sections; messages name the key path and what is allowed.</summary>
public static partial class ConfigValidator
{
    public static void Validate(SimulationConfig c, string baseDir, List<string> errors)
    {
        if (Results.OutputGuard.NameProblem(c.Name) is string nameProblem) errors.Add($"name = {c.Name}: {nameProblem}");

        var s = c.Simulation;
        if (s.WarmupRequests < 0) errors.Add($"simulation:warmupRequests = {s.WarmupRequests}: must be >= 0");
        if (s.MaxRequests < 0) errors.Add($"simulation:maxRequests = {s.MaxRequests}: must be >= 0 (0 = no limit)");
        if (!(s.MaxSimulatedUs >= 0)) errors.Add($"simulation:maxSimulatedUs = {s.MaxSimulatedUs}: must be >= 0 (0 = no limit)");
        if (!(s.SampleIntervalUs > 0)) errors.Add($"simulation:sampleIntervalUs = {s.SampleIntervalUs}: must be > 0");
        if (s.MaxRequests == 0 && s.MaxSimulatedUs == 0 && c.Workloads.Any(w => w.Type is not ("trace" or "kernel-trace")))
            errors.Add("simulation:maxRequests = 0: with no maxSimulatedUs either, a synthetic workload would never end; set one of them");

        c.Memory.Validate("memory", errors);
        c.Pcie.Validate("pcie", errors);
        c.Iommu.Validate("iommu", errors);
        ValidateSmmuPath(c, errors);

        var t = c.Translation;
        if (!TranslationOptions.Designs.Contains(t.Design)) errors.Add($"translation:design = {t.Design}: allowed values are {string.Join(", ", TranslationOptions.Designs)}");
        if (t.Stage1.Levels is not (4 or 5)) errors.Add($"translation:stage1:levels = {t.Stage1.Levels}: allowed values are 4, 5 (first-stage tables)");
        if (t.Stage2.Levels is not (3 or 4 or 5)) errors.Add($"translation:stage2:levels = {t.Stage2.Levels}: allowed values are 3, 4, 5");
        foreach (var (name, st) in new[] { ("stage1", t.Stage1), ("stage2", t.Stage2) })
            if (!PageSizes.TryParse(st.PageSize, out _)) errors.Add($"translation:{name}:pageSize = {st.PageSize}: allowed values are 4K, 2M, 1G");
        if (!DmaApiOptions.Modes.Contains(t.DmaApi.Mode)) errors.Add($"translation:dmaApi:mode = {t.DmaApi.Mode}: allowed values are {string.Join(", ", DmaApiOptions.Modes)}");
        if (t.DmaApi.FlushQueueEntries is < 1 or > 1 << 20) errors.Add($"translation:dmaApi:flushQueueEntries = {t.DmaApi.FlushQueueEntries}: must be in [1, 1048576]");
        if (!(t.DmaApi.FlushTimeoutUs > 0)) errors.Add($"translation:dmaApi:flushTimeoutUs = {t.DmaApi.FlushTimeoutUs}: must be > 0");
        foreach (var (key, v) in new[] { ("mapCostNs", t.DmaApi.MapCostNs), ("unmapCostNs", t.DmaApi.UnmapCostNs), ("invalidationSubmitNs", t.DmaApi.InvalidationSubmitNs), ("vmExitNs", t.DmaApi.VmExitNs), ("ioctlNs", t.DmaApi.IoctlNs), ("iopfHandlingNs", t.DmaApi.IopfHandlingNs) })
            if (!(v >= 0 && v <= 1e7)) errors.Add($"translation:dmaApi:{key} = {v}: must be in [0, 1e7] ns");

        var vmNames = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < c.Vms.Count; i++)
        {
            var vm = c.Vms[i];
            if (string.IsNullOrWhiteSpace(vm.Name)) errors.Add($"vms:{i}:name: a VM needs a name");
            else if (!vmNames.Add(vm.Name)) errors.Add($"vms:{i}:name = {vm.Name}: duplicate VM name");
            if (vm.MemoryMiB is < 2 or > 1 << 24) errors.Add($"vms:{i}:memoryMiB = {vm.MemoryMiB}: must be in [2, 16777216]");
            else if (vm.MemoryMiB % 2 != 0) errors.Add($"vms:{i}:memoryMiB = {vm.MemoryMiB}: must be a multiple of 2 (2 MiB pages)");
        }

        var devNames = new Dictionary<string, int>(StringComparer.Ordinal);
        var bdfs = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (int i = 0; i < c.Devices.Count; i++)
        {
            var d = c.Devices[i];
            d.Validate($"devices:{i}", errors);
            if (!string.IsNullOrEmpty(d.Name) && !devNames.TryAdd(d.Name, i)) errors.Add($"devices:{i}:name = {d.Name}: duplicate device name");
            if (d.RequesterId != default && !bdfs.Add(d.RequesterId.ToString())) errors.Add($"devices:{i}:bdf = {d.Bdf}: two devices at the same address");
            if (d.Attach.Vm is string vm && vm.Length > 0 && !vmNames.Contains(vm)) errors.Add($"devices:{i}:attach:vm = {vm}: no such VM (vms: {string.Join(", ", vmNames)})");
            if (t.Design is "nested" or "shadow" && string.IsNullOrEmpty(d.Attach.Vm) && c.Vms.Count != 1)
                errors.Add($"devices:{i}:attach:vm: design '{t.Design}' assigns devices to a VM; name one (vms: {(vmNames.Count == 0 ? "none defined" : string.Join(", ", vmNames))})");
            if (d.Attach.DemandPaging && t.Design is not ("single-stage" or "nested" or "shadow"))
                errors.Add($"devices:{i}:attach:demandPaging = true: demand paging needs IOMMU translation (design single-stage, nested or shadow; design = {t.Design})");
            if (t.Design is "nested" or "shadow" && d.Attach.Via == "kernel")
                errors.Add($"devices:{i}:attach:via = kernel: design '{t.Design}' assigns the device to a VM through VFIO; use iommufd or vfio-container");
        }
        RunLimits.Validate(c, errors);
        if (t.Design is "nested" or "shadow" && c.Vms.Count == 0) errors.Add($"translation:design = {t.Design}: needs a VM in 'vms'");

        for (int i = 0; i < c.Workloads.Count; i++)
        {
            var w = c.Workloads[i];
            string p = $"workloads:{i}";
            w.Validate(p, errors);
            if (!devNames.TryGetValue(w.Device, out int di))
            {
                errors.Add($"{p}:device = {w.Device}: no such device (devices: {string.Join(", ", devNames.Keys)})");
                continue;
            }
            var dev = c.Devices[di];
            // Several workloads may share a device (each completion goes back to its issuer), but each then
            // needs its own share of the device's tags: a closed loop asking for all of them would starve the others.
            var sharing = c.Workloads.Where(x => x.Device == w.Device).ToList();
            if (sharing.Count > 1 && sharing[0] == w && sharing.FirstOrDefault(x => x.Type is "nic-rx" or "nic-tx" or "nvme") is { } model)
                errors.Add($"workloads:{c.Workloads.IndexOf(model)}:type = {model.Type}: a NIC or NVMe model drives its device alone; device {w.Device} has {sharing.Count} workloads");
            else if (sharing.Count > 1 && w.Type != "kernel-trace" && sharing[0] == w)
            {
                int total = 0;
                for (int j = 0; j < c.Workloads.Count; j++)
                {
                    if (c.Workloads[j].Device != w.Device) continue;
                    if (c.Workloads[j].Outstanding is not int o)
                        errors.Add($"workloads:{j}:outstanding: device {w.Device} is shared by {sharing.Count} workloads, so each needs its own outstanding limit (together at most maxOutstanding = {dev.MaxOutstanding})");
                    else total += o;
                }
                if (total > dev.MaxOutstanding)
                    errors.Add($"{p}:outstanding: the workloads sharing device {w.Device} ask for {total} requests in flight together, more than its maxOutstanding = {dev.MaxOutstanding}");
            }
            if (w.Pasid is not null && dev.PasidBits == 0) errors.Add($"{p}:pasid = {w.Pasid}: device {dev.Name} has no PASID support (pasidBits = 0)");
            if (w.Type == "kernel-trace")
            {
                CheckKernelTrace(c, w, p, baseDir, errors);
                continue;
            }
            if (w.Type == "trace")
            {
                if (!string.IsNullOrWhiteSpace(w.Path) && !File.Exists(ResolvePath(baseDir, w.Path)))
                    errors.Add($"{p}:path = {w.Path}: trace file not found (looked in {baseDir} and the current folder)");
                continue;
            }
            if (dev.DmaRegions.Count == 0) { errors.Add($"devices:{di}:dmaRegions: workload {i} needs the device to have a DMA region"); continue; }
            if (w.Type is "nic-rx" or "nic-tx" or "nvme")
            {
                // Ring/queue models place their rings, buffers and data windows themselves.
                w.ValidateLayout(p, dev, errors);
                continue;
            }
            ulong start = w.Iova?.Value ?? dev.DmaRegions[0].Iova.Value;
            ulong end = start + (ulong)w.WorkingSetBytes.Bytes;
            if (end < start) { errors.Add($"{p}:{(w.Iova is null ? "workingSetBytes" : "iova")} = {(w.Iova is null ? w.WorkingSetBytes.ToString() : w.Iova.ToString())}: the window [0x{start:x}, +{w.WorkingSetBytes}) wraps past 2^64"); continue; }
            if (!dev.DmaRegions.Any(r => start >= r.Iova.Value && end <= r.Iova.Value + (ulong)r.Bytes.Bytes))
                errors.Add($"{p}:workingSetBytes = {w.WorkingSetBytes}: the window [0x{start:x}, 0x{end:x}) must lie inside one of {dev.Name}'s dmaRegions");
        }
    }

    /// <summary>A kernel trace is replayed whole, through the DMA API, and its counts are compared with the trace's.</summary>
    private static void CheckKernelTrace(SimulationConfig c, Workloads.WorkloadOptions w, string p, string baseDir, List<string> errors)
    {
        if (!string.IsNullOrWhiteSpace(w.Path) && !File.Exists(ResolvePath(baseDir, w.Path)))
            errors.Add($"{p}:path = {w.Path}: kernel trace file not found (looked in {baseDir} and the current folder)");
        if (c.Simulation.WarmupRequests != 0) errors.Add($"simulation:warmupRequests = {c.Simulation.WarmupRequests}: a kernel trace is replayed whole; set it to 0");
        if (c.Simulation.MaxRequests != 0) errors.Add($"simulation:maxRequests = {c.Simulation.MaxRequests}: a kernel trace ends the run when it ends; set it to 0 (maxSimulatedUs may cut it short)");
        if (c.Translation.DmaApi.Mode is not ("strict" or "lazy"))
            errors.Add($"translation:dmaApi:mode = {c.Translation.DmaApi.Mode}: a kernel trace maps and unmaps buffers as the kernel did; use strict or lazy");
        if (c.Workloads.Count(x => x.Device == w.Device) > 1) errors.Add($"{p}:device = {w.Device}: a kernel-trace workload needs its device to itself");
    }

    /// <summary>A path in a config: relative to the config's folder if it exists there, else to the current folder.</summary>
    public static string ResolvePath(string baseDir, string path)
    {
        if (Path.IsPathRooted(path)) return path;
        string rel = Path.Combine(baseDir, path);
        return File.Exists(rel) ? rel : path;
    }
}
