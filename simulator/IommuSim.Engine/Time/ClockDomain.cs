using System.Runtime.CompilerServices;

namespace IommuSim.Engine.Time;

/// <summary>
/// A clock of a given frequency whose edges fall at exact rational multiples of its period:
/// edge k is at ceil(k * 10^9 / kHz) ps, so a 1.5 GHz clock stays exact over any run length
/// instead of accumulating the rounding error of a 667 ps period.
/// Components schedule "in N cycles" of their own clock with <see cref="EdgeAfter"/>.
/// </summary>
public sealed class ClockDomain
{
    private const long PsPerKHzCycle = 1_000_000_000; // 1 / 1 kHz = 10^9 ps

    public ClockDomain(string name, double mhz)
    {
        if (!(mhz > 0) || mhz > 1_000_000)
            throw new ArgumentOutOfRangeException(nameof(mhz), mhz, "clock frequency must be in (0, 10^6] MHz");
        Name = name;
        FrequencyKHz = (long)Math.Round(mhz * 1000);
        if (FrequencyKHz <= 0)
            throw new ArgumentOutOfRangeException(nameof(mhz), mhz, "clock frequency below 1 kHz");
        // The period as a reduced fraction Num/Den ps (1.5 GHz: 2000/3), so edge arithmetic is exact
        // and needs no 128-bit math: every intermediate product stays below Num*Den <= 10^18.
        long g = (long)System.Numerics.BigInteger.GreatestCommonDivisor(PsPerKHzCycle, FrequencyKHz);
        _num = PsPerKHzCycle / g;
        _den = FrequencyKHz / g;
    }

    private readonly long _num;
    private readonly long _den;

    public string Name { get; }
    public long FrequencyKHz { get; }
    public double FrequencyMHz => FrequencyKHz / 1000.0;

    /// <summary>Nominal period in ps (rounded; use <see cref="EdgeTime"/> for exact edges).</summary>
    public double PeriodPs => PsPerKHzCycle / (double)FrequencyKHz;

    /// <summary>Time of edge number <paramref name="cycle"/> (edge 0 at time 0): ceil(cycle * Num / Den).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long EdgeTime(long cycle)
    {
        long q = Math.DivRem(cycle, _den, out long r);
        return q * _num + (r * _num + _den - 1) / _den;
    }

    /// <summary>Index of the first edge at or after <paramref name="time"/>: the smallest k with
    /// ceil(k·Num/Den) ≥ t, i.e. k·Num &gt; (t−1)·Den, so k = floor((t−1)·Den/Num) + 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long EdgeIndexAtOrAfter(long time)
    {
        // Many components ask about the same instant in a row: remember the last answer.
        if (time == _memoTime) return _memoIndex;
        long idx;
        if (time <= 0) idx = 0;
        else
        {
            long a = Math.DivRem(time - 1, _num, out long b);
            idx = a * _den + b * _den / _num + 1;
        }
        _memoTime = time;
        _memoIndex = idx;
        return idx;
    }

    private long _memoTime = -1;
    private long _memoIndex;

    /// <summary>The time <paramref name="cycles"/> edges after the first edge at or after <paramref name="now"/>.
    /// <c>EdgeAfter(now, 0)</c> aligns to the next edge (or now, if now is an edge).</summary>
    public long EdgeAfter(long now, long cycles) => EdgeTime(EdgeIndexAtOrAfter(now) + cycles);

    /// <summary>Duration of <paramref name="cycles"/> cycles in ps, rounded up.</summary>
    public long CyclesToPs(long cycles) => EdgeTime(cycles);

    public override string ToString() => $"{Name}@{FrequencyMHz}MHz";
}
