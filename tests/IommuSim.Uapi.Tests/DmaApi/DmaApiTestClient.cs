using IommuSim.Hardware;
using IommuSim.Hardware.Devices;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>A DMA-API client that remembers its last completion (the mapped IOVA, or that an unmap returned).</summary>
internal sealed class DmaApiTestClient : IDmaApiClient
{
    public ulong Iova;
    public bool Done;
    public void OnMapped(long tag, ulong iova) { Iova = iova; Done = true; }
    public void OnUnmapped(long tag) => Done = true;

    /// <summary>Runs one DMA-API call to its completion in simulated time; returns the IOVA a map gave.</summary>
    public ulong Call(Platform hw, Action call)
    {
        Done = false;
        call();
        hw.RunUntil(() => Done);
        Assert.True(Done);
        return Iova;
    }
}
