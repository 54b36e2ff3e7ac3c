using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;

namespace IommuSim.Workloads.Generators;

/// <summary>Sequential requests through the window, wrapping at its end (a DMA streaming buffer).</summary>
public sealed class StreamWorkload(WorkloadOptions o, DmaEngine device, Scheduler s, RequestBudget b, SimRandom rng, ulong baseIova)
    : WorkloadDriver(o, device, s, b, rng)
{
    private readonly ulong _window = (ulong)(o.WorkingSetBytes.Bytes / o.Bytes.Bytes * o.Bytes.Bytes);
    private ulong _offset;

    protected override RequestSpec? Next()
    {
        ulong iova = baseIova + _offset;
        _offset += (ulong)Options.Bytes.Bytes;
        if (_offset >= _window) _offset = 0;
        return new RequestSpec(iova, (int)Options.Bytes.Bytes, Random.NextDouble() >= Options.ReadFraction, Options.Pasid);
    }
}
