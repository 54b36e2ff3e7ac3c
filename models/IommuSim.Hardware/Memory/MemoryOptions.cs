namespace IommuSim.Hardware.Memory;

/// <summary>Timing of the memory system seen by DMA and by page walks (config section <c>memory</c>).</summary>
public sealed class MemoryOptions
{
    /// <summary>DRAM access latency (ns). Default 90 ns: the middle of the 80–100 ns DDR4/DDR5 loaded-latency range.</summary>
    public double LatencyNs { get; set; } = 90;

    /// <summary>Sustained bandwidth available to I/O (GB/s = bytes/ns); requests queue when it is exceeded.</summary>
    public double BandwidthGBps { get; set; } = 100;

    /// <summary>Probability that a page-walk read hits the last-level cache instead of DRAM.</summary>
    public double LlcHitRateForWalks { get; set; }

    /// <summary>Latency of an LLC hit (ns). Default 25 ns (20–40 ns on server parts).</summary>
    public double LlcLatencyNs { get; set; } = 25;

    public void Validate(string path, List<string> errors)
    {
        if (!(LatencyNs >= 0) || LatencyNs > 1e6) errors.Add($"{path}:latencyNs = {LatencyNs}: must be in [0, 1e6] ns");
        if (!(BandwidthGBps > 0) || BandwidthGBps > 1e5) errors.Add($"{path}:bandwidthGBps = {BandwidthGBps}: must be in (0, 1e5] GB/s");
        if (!(LlcHitRateForWalks >= 0 && LlcHitRateForWalks <= 1)) errors.Add($"{path}:llcHitRateForWalks = {LlcHitRateForWalks}: must be in [0, 1]");
        if (!(LlcLatencyNs >= 0) || LlcLatencyNs > 1e6) errors.Add($"{path}:llcLatencyNs = {LlcLatencyNs}: must be in [0, 1e6] ns");
    }
}
