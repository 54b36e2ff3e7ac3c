using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Devices;

/// <summary>Whoever drives a device (a workload): told when a request finishes.</summary>
public interface IDmaClient
{
    /// <summary>The request is complete (possibly faulted). The client returns it with <see cref="DmaEngine.Return"/>.</summary>
    void OnDmaComplete(DmaEngine device, DmaRequest request);
}
