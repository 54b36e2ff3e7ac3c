using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;

namespace IommuSim.Workloads.Trace;

/// <summary>
/// Replays the lines of a trace that name this workload's device, in order: timed lines wait for
/// their time_ns, untimed lines issue as soon as a tag is free. Streams the file.
/// </summary>
public sealed class TraceWorkload(WorkloadOptions o, DmaEngine device, Scheduler s, RequestBudget b, SimRandom rng, TraceReader reader)
    : WorkloadDriver(o, device, s, b, rng), IDisposable
{
    private readonly string _name = device.Name;

    protected override RequestSpec? Next()
    {
        while (reader.TryNext(out var r))
        {
            if (!ReferenceEquals(r.Device, _name) && r.Device != _name) continue;
            return new RequestSpec(r.Iova, r.Bytes, r.IsWrite, r.Pasid, r.TimePs);
        }
        return null;
    }

    public void Dispose() => reader.Dispose();
}
