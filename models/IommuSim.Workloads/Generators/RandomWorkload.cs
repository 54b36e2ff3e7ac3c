using System.Runtime.CompilerServices;
using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;

namespace IommuSim.Workloads.Generators;

/// <summary>Requests at uniformly random, size-aligned offsets of the window.</summary>
public sealed class RandomWorkload(WorkloadOptions o, DmaEngine device, Scheduler s, RequestBudget b, SimRandom rng, ulong baseIova)
    : WorkloadDriver(o, device, s, b, rng)
{
    private readonly ulong _slots = (ulong)(o.WorkingSetBytes.Bytes / o.Bytes.Bytes);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    protected override RequestSpec? Next()
    {
        ulong iova = baseIova + Random.NextBelow(_slots) * (ulong)Options.Bytes.Bytes;
        return new RequestSpec(iova, (int)Options.Bytes.Bytes, Random.NextDouble() >= Options.ReadFraction, Options.Pasid);
    }
}
