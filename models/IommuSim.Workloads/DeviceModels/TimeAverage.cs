namespace IommuSim.Workloads.DeviceModels;

/// <summary>A time-weighted average of an integer level (ring occupancy, commands in flight, a busy CPU).</summary>
public sealed class TimeAverage
{
    private long _value;
    private long _lastPs;
    private long _startPs;
    private double _integral;

    public long Value => _value;
    public long Max { get; private set; }

    public void Set(long nowPs, long value)
    {
        _integral += (double)_value * (nowPs - _lastPs);
        _lastPs = nowPs;
        _value = value;
        if (value > Max) Max = value;
    }

    public double Mean(long nowPs)
    {
        long span = nowPs - _startPs;
        return span <= 0 ? _value : (_integral + (double)_value * (nowPs - _lastPs)) / span;
    }

    public void Reset(long nowPs)
    {
        _startPs = _lastPs = nowPs;
        _integral = 0;
        Max = _value;
    }

    /// <summary>A level that starts at <paramref name="value"/> at time 0.</summary>
    public static TimeAverage Starting(long value)
    {
        var t = new TimeAverage();
        t.Set(0, value);
        return t;
    }
}
