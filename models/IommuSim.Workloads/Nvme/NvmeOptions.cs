using System.Globalization;
using IommuSim.Engine.Units;

namespace IommuSim.Workloads.Nvme;

/// <summary>
/// NVMe model keys (<c>workloads[].nvme</c>, used by the <c>nvme</c> type). The I/O size is the
/// workload's <c>bytes</c> (4 KiB – 2 MiB, a multiple of 4 KiB), the data buffers lie in the window
/// [<c>iova</c>, <c>iova</c> + <c>workingSetBytes</c>); <c>arrival</c> <c>closed</c> keeps
/// <c>queueDepth</c> commands in flight, <c>poisson</c>/<c>constant</c>/<c>bursty</c> submit at
/// <c>rateMrps</c> million commands per second (commands wait in the host while the queue is full).
/// </summary>
public sealed class NvmeOptions
{
    /// <summary>Commands in flight at most: submission/completion queue entries (1–1024). Default 32.</summary>
    public int QueueDepth { get; set; } = 32;
    /// <summary><c>random</c> (uniform, I/O-size aligned) or <c>sequential</c> offsets in the window. Default random.</summary>
    public string Pattern { get; set; } = "random";
    /// <summary>Fraction of read commands (storage → host memory: data DMA writes); the rest are writes (data DMA reads). Default 1.</summary>
    public double ReadFraction { get; set; } = 1.0;
    /// <summary>Media time of a read, µs (before its data is DMA-written to the host). Default 10.</summary>
    public double ReadLatencyUs { get; set; } = 10;
    /// <summary>Media time of a write, µs (after its data was DMA-read from the host). Default 20.</summary>
    public double WriteLatencyUs { get; set; } = 20;
    /// <summary>Commands the media serves at once (channels/dies); more wait in the controller (1–4096). Default 8.</summary>
    public int MediaParallelism { get; set; } = 8;
    /// <summary>Start of the SQ, CQ and PRP lists (4 KiB aligned, inside a dmaRegion). Default: the first 4 KiB boundary after the data window.</summary>
    public Address? QueueIova { get; set; }
    /// <summary><c>recycle</c> (data buffers mapped once: the window) or <c>map-per-io</c> (each command's buffer mapped through the DMA API before submission and unmapped after completion). Default recycle.</summary>
    public string BufferPolicy { get; set; } = "recycle";
    /// <summary>Host CPU time per command (building it, handling its completion), ns. Default 0.</summary>
    public double HostNsPerCommand { get; set; }

    public const int SqEntryBytes = 64;
    public const int CqEntryBytes = 16;
    public const int PageBytes = 4096;
    public static readonly string[] Patterns = ["random", "sequential"];
    public static readonly string[] BufferPolicies = ["recycle", "map-per-io"];

    /// <summary>Range checks; <paramref name="workloadPath"/> is <c>workloads:i</c>.</summary>
    public void Validate(string workloadPath, long ioBytes, List<string> errors)
    {
        static string S(double d) => d.ToString(CultureInfo.InvariantCulture);
        string path = workloadPath + ":nvme";
        if (ioBytes < PageBytes || ioBytes > 2 << 20 || ioBytes % PageBytes != 0)
            errors.Add($"{workloadPath}:bytes = {ioBytes}: an NVMe I/O must be a multiple of 4KiB in [4KiB, 2MiB]");
        if (QueueDepth is < 1 or > 1024) errors.Add($"{path}:queueDepth = {QueueDepth}: must be in [1, 1024]");
        if (!Patterns.Contains(Pattern)) errors.Add($"{path}:pattern = {Pattern}: allowed values are {string.Join(", ", Patterns)}");
        if (!(ReadFraction >= 0 && ReadFraction <= 1)) errors.Add($"{path}:readFraction = {S(ReadFraction)}: must be in [0, 1]");
        if (!(ReadLatencyUs >= 0 && ReadLatencyUs <= 1e6)) errors.Add($"{path}:readLatencyUs = {S(ReadLatencyUs)}: must be in [0, 1e6]");
        if (!(WriteLatencyUs >= 0 && WriteLatencyUs <= 1e6)) errors.Add($"{path}:writeLatencyUs = {S(WriteLatencyUs)}: must be in [0, 1e6]");
        if (MediaParallelism is < 1 or > 4096) errors.Add($"{path}:mediaParallelism = {MediaParallelism}: must be in [1, 4096]");
        if (QueueIova is Address q && (q.Value & 0xFFF) != 0) errors.Add($"{path}:queueIova = {q}: must be 4 KiB aligned");
        if (!BufferPolicies.Contains(BufferPolicy)) errors.Add($"{path}:bufferPolicy = {BufferPolicy}: allowed values are {string.Join(", ", BufferPolicies)}");
        if (!(HostNsPerCommand >= 0 && HostNsPerCommand <= 1e9)) errors.Add($"{path}:hostNsPerCommand = {S(HostNsPerCommand)}: must be in [0, 1e9]");
    }

    /// <summary>PRP entries a transfer of <paramref name="bytes"/> at <paramref name="iova"/> needs (one per page touched).</summary>
    public static int Pages(ulong iova, int bytes) => (int)(((iova & (PageBytes - 1)) + (ulong)bytes + PageBytes - 1) / PageBytes);
}
