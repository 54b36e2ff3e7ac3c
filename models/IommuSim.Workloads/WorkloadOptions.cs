using IommuSim.Engine.Units;
using IommuSim.Hardware.Devices;
using IommuSim.Workloads.KernelTrace;
using IommuSim.Workloads.Nic;
using IommuSim.Workloads.Nvme;

namespace IommuSim.Workloads;

/// <summary>One workload driving one device (config list <c>workloads</c>).</summary>
public sealed class WorkloadOptions
{
    /// <summary>Name of the device (from <c>devices</c>) this workload drives.</summary>
    public string Device { get; set; } = "";
    /// <summary><c>stream</c>, <c>random</c>, <c>zipf</c>, <c>trace</c>, or a device model: <c>nic-rx</c>,
    /// <c>nic-tx</c> (keys under <c>nic</c>), <c>nvme</c> (keys under <c>nvme</c>).</summary>
    public string Type { get; set; } = "random";
    /// <summary>Bytes per request (nic-rx/nic-tx: the packet size; nvme: the I/O size).</summary>
    public ByteSize Bytes { get; set; } = new(64);
    /// <summary>Fraction of requests that are DMA reads (memory → device). Not used by nic-rx/nic-tx/nvme (see nvme:readFraction).</summary>
    public double ReadFraction { get; set; } = 0.5;
    /// <summary>Size of the address window the requests fall in (nvme: the data-buffer window; not used by nic-rx/nic-tx).</summary>
    public ByteSize WorkingSetBytes { get; set; } = new(2 << 20);
    /// <summary>Start of the window; default: the device's first DMA region (nic-rx/nic-tx: the default ring IOVA).</summary>
    public Address? Iova { get; set; }
    /// <summary>Zipf exponent s (zipf only).</summary>
    public double ZipfExponent { get; set; } = 1.0;
    /// <summary>Trace file (trace only), relative to the config file's folder or absolute.</summary>
    public string? Path { get; set; }
    /// <summary>PASID of the requests (null: requests without PASID).</summary>
    public uint? Pasid { get; set; }
    /// <summary><c>closed</c> (issue when a slot is free), <c>poisson</c>, <c>constant</c> or <c>bursty</c> arrivals.</summary>
    public string Arrival { get; set; } = "closed";
    /// <summary>Offered load for open-loop arrivals, in million requests per second (nvme: million commands per second; nic-rx/nic-tx use nic:offeredGbps or nic:mpps instead).</summary>
    public double RateMrps { get; set; } = 1.0;
    /// <summary>Requests per burst for <c>bursty</c> arrivals.</summary>
    public int BurstSize { get; set; } = 16;
    /// <summary>Closed loop: requests kept in flight (default: the device's maxOutstanding; nvme: nvme:queueDepth instead).</summary>
    public int? Outstanding { get; set; }
    /// <summary><c>premapped</c> (the window is mapped once, at setup) or <c>per-request</c>
    /// (each request's buffer is mapped and unmapped through the DMA API, translation.dmaApi).</summary>
    public string Mapping { get; set; } = "premapped";

    public static readonly string[] Mappings = ["premapped", "per-request"];

    /// <summary>Per-request mapping: fraction of unmaps followed by a stray 64-byte DMA read of the
    /// buffer just unmapped (models the use-after-unmap window that lazy invalidation opens).</summary>
    public double StrayDmaFraction { get; set; }

    /// <summary>NIC model keys (nic-rx, nic-tx).</summary>
    public NicOptions Nic { get; set; } = new();
    /// <summary>NVMe model keys (nvme).</summary>
    public NvmeOptions Nvme { get; set; } = new();
    /// <summary>Kernel-trace replay keys (kernel-trace: ftrace text of iommu:map/unmap at <c>path</c>).</summary>
    public KernelTraceOptions KernelTrace { get; set; } = new();

    public static readonly string[] Types = ["stream", "random", "zipf", "trace", "nic-rx", "nic-tx", "nvme", "kernel-trace"];

    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsNic => Type is "nic-rx" or "nic-tx";
    public static readonly string[] Arrivals = ["closed", "poisson", "constant", "bursty"];

    public void Validate(string path, List<string> errors)
    {
        if (!Types.Contains(Type)) errors.Add($"{path}:type = {Type}: allowed values are {string.Join(", ", Types)}");
        if (!Arrivals.Contains(Arrival)) errors.Add($"{path}:arrival = {Arrival}: allowed values are {string.Join(", ", Arrivals)}");
        if (!Mappings.Contains(Mapping)) errors.Add($"{path}:mapping = {Mapping}: allowed values are {string.Join(", ", Mappings)}");
        if (!(StrayDmaFraction >= 0 && StrayDmaFraction <= 1)) errors.Add($"{path}:strayDmaFraction = {StrayDmaFraction}: must be in [0, 1]");
        if (StrayDmaFraction > 0 && Mapping != "per-request") errors.Add($"{path}:strayDmaFraction = {StrayDmaFraction}: needs mapping = per-request");
        if (Type == "trace")
        {
            if (string.IsNullOrWhiteSpace(Path)) errors.Add($"{path}:path: a trace workload needs the path of a trace file");
            return;
        }
        if (Type == "kernel-trace")
        {
            if (string.IsNullOrWhiteSpace(Path)) errors.Add($"{path}:path: a kernel-trace workload needs the path of an ftrace text file");
            if (Bytes.Bytes is < 1 or > 1 << 20) errors.Add($"{path}:bytes = {Bytes}: must be in [1, 1MiB]");
            if (!(ReadFraction >= 0 && ReadFraction <= 1)) errors.Add($"{path}:readFraction = {ReadFraction}: must be in [0, 1]");
            if (Mapping != "premapped") errors.Add($"{path}:mapping = {Mapping}: a kernel trace maps and unmaps as the trace says; leave mapping at premapped");
            if (Arrival != "closed") errors.Add($"{path}:arrival = {Arrival}: a kernel trace keeps its recorded times (kernelTrace:timeScale); leave arrival at closed");
            KernelTrace.Validate(path, errors);
            return;
        }
        if (Bytes.Bytes is < 1 or > 1 << 20) errors.Add($"{path}:bytes = {Bytes}: must be in [1, 1MiB]");
        if (WorkingSetBytes.Bytes < Bytes.Bytes) errors.Add($"{path}:workingSetBytes = {WorkingSetBytes}: must be at least bytes ({Bytes})");
        if (!(ReadFraction >= 0 && ReadFraction <= 1)) errors.Add($"{path}:readFraction = {ReadFraction}: must be in [0, 1]");
        if (Type == "zipf" && !(ZipfExponent > 0 && ZipfExponent <= 10)) errors.Add($"{path}:zipfExponent = {ZipfExponent}: must be in (0, 10]");
        if (Arrival != "closed" && !(RateMrps > 0 && RateMrps <= 10_000)) errors.Add($"{path}:rateMrps = {RateMrps}: must be in (0, 10000]");
        if (Arrival == "bursty" && BurstSize is < 1 or > 1_000_000) errors.Add($"{path}:burstSize = {BurstSize}: must be in [1, 1000000]");
        if (Outstanding is int o && o < 1) errors.Add($"{path}:outstanding = {o}: must be >= 1");
        if (Pasid is uint p && p >= 1u << 20) errors.Add($"{path}:pasid = {p}: PASIDs are 20 bits");
        if ((IsNic || Type == "nvme") && Mapping != "premapped")
            errors.Add($"{path}:mapping = {Mapping}: {Type} maps its buffers as {(IsNic ? "nic" : "nvme")}:bufferPolicy says; leave mapping at premapped");
        if (IsNic) Nic.Validate(path, Bytes.Bytes, Arrival, Type == "nic-rx", errors);
        if (Type == "nvme") Nvme.Validate(path, Bytes.Bytes, errors);
    }

    /// <summary>
    /// Checks the device-model layouts against the device (nic-rx/nic-tx: the ring and the recycle
    /// buffer pool; nvme: the queues, PRP lists and data window must lie inside its dmaRegions).
    /// Meant for the config validator; the models run the same check when constructed.
    /// </summary>
    public void ValidateLayout(string path, DeviceOptions device, List<string> errors)
    {
        if (IsNic) NicWorkload.CheckLayout(this, device, path, errors);
        else if (Type == "nvme") NvmeWorkload.CheckLayout(this, device, path, errors);
    }
}
