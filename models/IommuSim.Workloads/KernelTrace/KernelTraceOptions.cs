namespace IommuSim.Workloads.KernelTrace;

/// <summary>
/// Keys of a <c>kernel-trace</c> workload (config <c>workloads[].kernelTrace</c>). The file is
/// <c>workloads[].path</c>; each DMA is <c>workloads[].bytes</c> long and a read with probability
/// <c>workloads[].readFraction</c>.
/// </summary>
public sealed class KernelTraceOptions
{
    /// <summary>DMAs the device makes to each mapped buffer between its map and its unmap (0: none;
    /// the replay then exercises only the mapping path). Assumption: the trace does not say; 1 suits
    /// a NIC or storage buffer that is filled or drained once.</summary>
    public int DmasPerMap { get; set; } = 1;

    /// <summary>Multiplies the recorded gaps between events: 1 keeps them, 2 replays at half speed,
    /// 0 issues every event as soon as the one before it allows (maps first, DMAs, then the unmap).</summary>
    public double TimeScale { get; set; } = 1.0;

    /// <summary>Run each map/unmap on the driver CPU the trace recorded it on (modulo 64): per-CPU
    /// call queues and, when lazy, per-CPU flush queues, as Linux has. False: all on CPU 0.</summary>
    public bool UseTraceCpus { get; set; } = true;

    /// <summary>Replay each <c>io_page_fault</c> line as a 64-byte DMA to its IOVA (read or write as its flags say).</summary>
    public bool ReplayFaults { get; set; } = true;

    public void Validate(string path, List<string> errors)
    {
        if (DmasPerMap is < 0 or > 1_000_000) errors.Add($"{path}:kernelTrace:dmasPerMap = {DmasPerMap}: must be in [0, 1000000]");
        if (!(TimeScale >= 0 && TimeScale <= 1e6)) errors.Add($"{path}:kernelTrace:timeScale = {TimeScale}: must be in [0, 1e6] (1 keeps the recorded times, 0 replays as fast as possible)");
    }
}
