using IommuSim.Engine.Scheduling;
using IommuSim.Hardware;

namespace IommuSim.Simulation.Running;

/// <summary>One sample of the run's counters (cumulative since the measured phase began).</summary>
public readonly record struct TimeSample(double TimeNs, long IotlbLookups, long IotlbMisses, long Completed, long Bytes);

/// <summary>Samples IOTLB and request counters every interval of simulated time (IOTLB miss rate over time).</summary>
internal sealed class TimeSeriesSampler(Platform platform, long intervalPs, int maxSamples = 20_000) : IEventHandler
{
    private long _originPs;
    private bool _running = true;

    public List<TimeSample> Samples { get; } = [];

    public void StopSampling() => _running = false;

    public void OnEvent(int kind, long arg, object? payload)
    {
        if (!_running || arg != _generation) return;
        Samples.Add(Take());
        // Stop when nothing else is pending, so the sampler never keeps a drained simulation alive.
        if (Samples.Count < maxSamples && platform.Scheduler.Pending > 0) platform.Scheduler.ScheduleIn(intervalPs, this, 0, _generation);
    }

    private long _generation;

    /// <summary>Restart at the beginning of the measured phase (events of the old series are ignored).</summary>
    public void Restart(long originPs)
    {
        _generation++;
        _originPs = originPs;
        Samples.Clear();
        platform.Scheduler.ScheduleAt(originPs + intervalPs, this, 0, _generation);
    }

    public TimeSample Take()
    {
        long completed = 0, bytes = 0;
        foreach (var d in platform.Devices) { completed += d.Stats.Completed; bytes += d.Stats.Bytes; }
        return new TimeSample((platform.Scheduler.Now - _originPs) / 1000.0, platform.Iommu.Iotlb.Lookups, platform.Iommu.Iotlb.Misses, completed, bytes);
    }
}
