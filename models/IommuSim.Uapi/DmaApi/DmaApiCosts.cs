using IommuSim.Engine.Time;

namespace IommuSim.Uapi.DmaApi;

/// <summary>Run-time DMA-API parameters (config translation.dmaApi), in ps.</summary>
public sealed record DmaApiCosts(
    string Mode,
    long MapPs,
    long UnmapPs,
    long InvalidationSubmitPs,
    long VmExitPs,
    long IoctlPs,
    int FlushQueueEntries,
    long FlushTimeoutPs)
{
    public static DmaApiCosts FromNs(string mode, double mapNs, double unmapNs, double invalSubmitNs, double vmExitNs, double ioctlNs,
        int flushQueueEntries, double flushTimeoutUs)
        => new(mode, SimTime.FromNs(mapNs), SimTime.FromNs(unmapNs), SimTime.FromNs(invalSubmitNs), SimTime.FromNs(vmExitNs),
            SimTime.FromNs(ioctlNs), flushQueueEntries, SimTime.FromUs(flushTimeoutUs));
}
