using System.Globalization;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Devices;
using IommuSim.Workloads;

namespace IommuSim.Simulation.Config;

/// <summary>
/// The ranges a run can actually execute (docs/limits.md), checked with the config before
/// anything is built. Simulated time is a signed 64-bit count of picoseconds, so every bound is
/// derived from one budget: a run stops at <see cref="TimeCeilingPs"/> = 2^62 ps (53 days) at the
/// latest, and no single delay any component schedules may exceed <see cref="MaxDelayPs"/>, so
/// "now + delay" can never reach 2^63. The headroom between them (2^62 ps) also covers queued work
/// (a memory or link backlog of many such delays).
/// </summary>
public static class RunLimits
{
    /// <summary>Where a run ends at the latest, time limit or not (the engine's ps clock is 2^63).</summary>
    public const long TimeCeilingPs = 1L << 62;

    /// <summary>Longest single delay (an inter-arrival gap, a transfer): 10^15 ps = 1000 s.
    /// An exponential draw is at most −ln(2^−53) ≈ 36.7 means, so 37 · 10^15 ≪ 2^62.</summary>
    public const double MaxDelayPs = 1e15;

    /// <summary>simulation:maxSimulatedUs: 10^12 µs = 10^18 ps, below the ceiling with room for the requests in flight.</summary>
    public const double MaxSimulatedUs = 1e12;

    /// <summary>simulation:sampleIntervalUs: at least 1 ns (the sampler stops at 20 000 samples), at most the longest run.</summary>
    public const double MinSampleIntervalUs = 1e-3;

    /// <summary>Request counts: far more than a run can complete in a day of wall time (~10^7/s), and their sum fits in 64 bits.</summary>
    public const long MaxRequests = 1_000_000_000_000_000;

    /// <summary>A clock domain's period is 10^9 / f ps with f in whole kHz (ClockDomain), so 1 kHz is the slowest clock.</summary>
    public const double MinClockMHz = 1e-3;

    /// <summary>
    /// memory:bandwidthGBps: the memory queue can hold every outstanding request of every device
    /// (≤ 256 devices × 65 536 tags × 1 MiB = 2^44 bytes); at 1000/bw ps per byte that backlog must
    /// stay below the 2^62 ps headroom: bw ≥ 1000 · 2^44 / 2^62 ≈ 0.0038 GB/s. Rounded up to 0.01.
    /// </summary>
    public const double MinBandwidthGBps = 0.01;

    public const int MaxDevices = 256;
    public const int MaxWorkloads = 256;
    public const int MaxVms = 64;

    /// <summary>translation:dmaApi:flushTimeoutUs: at most 10^9 µs (10^15 ps = <see cref="MaxDelayPs"/>).</summary>
    public const double MaxFlushTimeoutUs = 1e9;

    /// <summary>
    /// Memory a config may map before the first event (VM RAM + DMA regions): building pins and
    /// maps every 4 KiB page. Measured on the 2-core CI machine: a nested VM of 64 GiB builds in
    /// about 27 s with 255 MB resident; 1 TiB did not build within 60 s (1.4 GB and growing).
    /// </summary>
    public const long MaxMappedBytes = 64L << 30;

    private static string S(double d) => d.ToString("R", CultureInfo.InvariantCulture);

    public static void Validate(SimulationConfig c, List<string> errors)
    {
        var s = c.Simulation;
        if (s.MaxSimulatedUs > MaxSimulatedUs) errors.Add($"simulation:maxSimulatedUs = {S(s.MaxSimulatedUs)}: must be at most {S(MaxSimulatedUs)} µs (simulated time is a 64-bit count of picoseconds; docs/limits.md)");
        if (s.SampleIntervalUs > 0 && (s.SampleIntervalUs < MinSampleIntervalUs || s.SampleIntervalUs > MaxSimulatedUs))
            errors.Add($"simulation:sampleIntervalUs = {S(s.SampleIntervalUs)}: must be in [{S(MinSampleIntervalUs)}, {S(MaxSimulatedUs)}] µs");
        if (s.MaxRequests > MaxRequests) errors.Add($"simulation:maxRequests = {s.MaxRequests}: must be at most {MaxRequests}");
        if (s.WarmupRequests > MaxRequests) errors.Add($"simulation:warmupRequests = {s.WarmupRequests}: must be at most {MaxRequests}");

        if (c.Memory.BandwidthGBps > 0 && c.Memory.BandwidthGBps < MinBandwidthGBps)
            errors.Add($"memory:bandwidthGBps = {S(c.Memory.BandwidthGBps)}: must be at least {S(MinBandwidthGBps)} GB/s (below it the memory backlog outgrows 64-bit picosecond time; docs/limits.md)");
        if (c.Iommu.ClockMHz > 0 && c.Iommu.ClockMHz < MinClockMHz)
            errors.Add($"iommu:clockMHz = {S(c.Iommu.ClockMHz)}: must be at least {S(MinClockMHz)} MHz (1 kHz; clocks count whole kHz)");
        var d = c.Translation.DmaApi;
        if (d.FlushTimeoutUs > MaxFlushTimeoutUs) errors.Add($"translation:dmaApi:flushTimeoutUs = {S(d.FlushTimeoutUs)}: must be at most {S(MaxFlushTimeoutUs)} µs");

        if (c.Devices.Count > MaxDevices) errors.Add($"devices: {c.Devices.Count} devices; at most {MaxDevices}");
        if (c.Workloads.Count > MaxWorkloads) errors.Add($"workloads: {c.Workloads.Count} workloads; at most {MaxWorkloads}");
        if (c.Vms.Count > MaxVms) errors.Add($"vms: {c.Vms.Count} VMs; at most {MaxVms}");

        for (int i = 0; i < c.Workloads.Count; i++) CheckArrivals(c.Workloads[i], $"workloads:{i}", errors);

        // Mapped memory: every VM's RAM and every DMA region is pinned and mapped before the first event.
        decimal mapped = 0;
        bool vmDesign = Uapi.Designs.TranslationDesigns.Find(c.Translation.Design)?.AssignsDevicesToVm == true;
        if (vmDesign) foreach (var vm in c.Vms) mapped += (decimal)Math.Max(0, vm.MemoryMiB) * (1 << 20);
        foreach (var dev in c.Devices) foreach (var r in dev.DmaRegions) mapped += Math.Max(0, r.Bytes.Bytes);
        if (mapped > MaxMappedBytes)
            errors.Add($"{(vmDesign && c.Vms.Count > 0 ? "vms:0:memoryMiB" : "devices:0:dmaRegions")}: the config maps {mapped / (1 << 20):0} MiB (VM memory and DMA regions); at most {MaxMappedBytes >> 20} MiB (64 GiB): setup pins and maps every page before the first event (docs/limits.md)");

        for (int i = 0; i < c.Devices.Count; i++) CheckRegions(c, c.Devices[i], $"devices:{i}", errors);
        if (vmDesign) CheckGuestLayout(c, errors);
    }

    /// <summary>
    /// Nested and shadow: the guest driver places each device's DMA buffers in its VM's RAM as
    /// the VM designs do (Uapi.Designs.VmDesign: from GPA 1 MiB, aligned to the stage-1 page size, skipping the MSI
    /// window, keeping the top 64 MiB for the guest's page tables). A VM too small for them is an
    /// error naming the VM and the region, instead of a failed build.
    /// </summary>
    private static void CheckGuestLayout(SimulationConfig c, List<string> errors)
    {
        const ulong guestBufferBase = Uapi.Designs.VmDesign.GuestBufferBase, reservedTop = Uapi.Designs.VmDesign.GuestTableArea;
        var leaf = c.Translation.Stage1.Leaf;
        var next = new Dictionary<string, ulong>(StringComparer.Ordinal);
        for (int di = 0; di < c.Devices.Count; di++)
        {
            var d = c.Devices[di];
            if (d.Attach.DemandPaging) continue; // its pages arrive through PRI, nothing is placed up front
            string? vmName = string.IsNullOrEmpty(d.Attach.Vm) ? c.Vms.FirstOrDefault()?.Name : d.Attach.Vm;
            int vi = c.Vms.FindIndex(v => v.Name == vmName);
            if (vi < 0) continue; // reported by ConfigValidator
            decimal memory = (decimal)c.Vms[vi].MemoryMiB * (1 << 20);
            ulong cursor = next.GetValueOrDefault(vmName!, guestBufferBase);
            for (int ri = 0; ri < d.DmaRegions.Count; ri++)
            {
                long bytes = d.DmaRegions[ri].Bytes.Bytes;
                if (bytes <= 0 || cursor > ulong.MaxValue / 2) break;
                ulong gpa = Uapi.Designs.VmDesign.GuestBufferGpa(cursor, (ulong)bytes, leaf);
                if (gpa + (decimal)bytes > memory - reservedTop)
                {
                    decimal need = Math.Ceiling((gpa + (decimal)bytes + reservedTop) / (1 << 20));
                    errors.Add($"vms:{vi}:memoryMiB = {c.Vms[vi].MemoryMiB}: too small for the DMA buffers the guest places in it (devices:{di}:dmaRegions:{ri} needs at least {need} MiB: buffers from GPA 1 MiB, the top 64 MiB for guest page tables)");
                    return;
                }
                cursor = gpa + (ulong)bytes;
            }
            next[vmName!] = cursor;
        }
    }

    /// <summary>Mean gap between arrival batches, in ps, must be at most <see cref="MaxDelayPs"/>.</summary>
    private static void CheckArrivals(WorkloadOptions w, string p, List<string> errors)
    {
        if (w.Type == "trace") return;
        long batch = w.Arrival == "bursty" ? Math.Max(1, w.BurstSize) : 1;
        if (w.IsNic)
        {
            var nic = w.Nic;
            double pps = nic.PacketsPerSecond(w.Bytes.Bytes);
            if (pps > 0 && 1e12 / pps * batch > MaxDelayPs)
                errors.Add($"{p}:nic:{(nic.Mpps > 0 ? "mpps" : "offeredGbps")} = {S(nic.Mpps > 0 ? nic.Mpps : nic.OfferedGbps)}: too low; the mean gap between arrivals{(batch > 1 ? $" (bursts of {batch})" : "")} must be at most {S(MaxDelayPs / 1e12)} s of simulated time");
            if (nic.LineRateGbps > 0 && (w.Bytes.Bytes + nic.WireOverheadBytes) * 8000.0 / nic.LineRateGbps > MaxDelayPs)
                errors.Add($"{p}:nic:lineRateGbps = {S(nic.LineRateGbps)}: too low; one packet on the wire must take at most {S(MaxDelayPs / 1e12)} s");
            return;
        }
        if (w.Arrival == "closed" || !(w.RateMrps > 0)) return;
        if (1e6 / w.RateMrps * batch > MaxDelayPs)
            errors.Add($"{p}:rateMrps = {S(w.RateMrps)}: too low; the mean gap between arrivals{(batch > 1 ? $" (bursts of {batch})" : "")} must be at most {S(MaxDelayPs / 1e12)} s of simulated time, so rateMrps >= {S(1e6 * batch / MaxDelayPs)}");
    }

    /// <summary>
    /// DMA regions are mapped with IOAS_MAP (or into the guest's stage 1): they must not overlap each
    /// other (EEXIST), the MSI window 0xFEE00000–0xFEEFFFFF (reserved per device; on x86 a write
    /// there is an interrupt) or lie above the aperture of the table that maps them.
    /// </summary>
    private static void CheckRegions(SimulationConfig c, DeviceOptions dev, string p, List<string> errors)
    {
        const ulong msiStart = Uapi.Iommufd.IommufdContext.MsiWindowStart, msiLast = Uapi.Iommufd.IommufdContext.MsiWindowLast;
        var t = c.Translation;
        bool guestStage1 = Uapi.Designs.TranslationDesigns.Find(t.Design)?.AssignsDevicesToVm == true; // regions live in the guest's stage 1
        int levels = guestStage1 ? t.Stage1.Levels : t.Stage2.Levels;
        string levelsKey = guestStage1 ? "translation:stage1:levels" : "translation:stage2:levels";
        int bits = levels is >= 3 and <= 5 ? 12 + 9 * levels : 48;
        ulong apertureLast = bits >= 64 ? ulong.MaxValue : (1UL << bits) - 1;
        for (int i = 0; i < dev.DmaRegions.Count; i++)
        {
            var r = dev.DmaRegions[i];
            if (r.Bytes.Bytes <= 0) continue;
            ulong start = r.Iova.Value, bytes = (ulong)r.Bytes.Bytes;
            if (start + bytes < start) continue; // reported by DeviceOptions.Validate
            ulong last = start + bytes - 1;
            string rp = $"{p}:dmaRegions:{i}";
            if (last > apertureLast)
                errors.Add($"{rp}: [0x{start:x}, 0x{last + 1:x}) lies above the aperture (IOVAs up to 0x{apertureLast:x}, {bits} bits with {levelsKey} = {levels})");
            else if (start <= msiLast && last >= msiStart)
                errors.Add($"{rp}: [0x{start:x}, 0x{last + 1:x}) overlaps the MSI window [0xfee00000, 0xfef00000), which is reserved");
            for (int j = 0; j < i; j++)
            {
                var o = dev.DmaRegions[j];
                if (o.Bytes.Bytes <= 0) continue;
                ulong os = o.Iova.Value, ol = os + (ulong)o.Bytes.Bytes - 1;
                if (ol < os) continue;
                if (start <= ol && last >= os)
                {
                    errors.Add(start == os && last == ol
                        ? $"{rp}: the same range as {p}:dmaRegions:{j} ([0x{start:x}, 0x{last + 1:x}))"
                        : $"{rp}: [0x{start:x}, 0x{last + 1:x}) overlaps {p}:dmaRegions:{j} ([0x{os:x}, 0x{ol + 1:x}))");
                    break;
                }
            }
        }
    }
}
