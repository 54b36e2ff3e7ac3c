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
    }

    public string Name { get; }
    public long FrequencyKHz { get; }
    public double FrequencyMHz => FrequencyKHz / 1000.0;

    /// <summary>Nominal period in ps (rounded; use <see cref="EdgeTime"/> for exact edges).</summary>
    public double PeriodPs => PsPerKHzCycle / (double)FrequencyKHz;

    /// <summary>Time of edge number <paramref name="cycle"/> (edge 0 at time 0).</summary>
    public long EdgeTime(long cycle)
    {
        long f = FrequencyKHz;
        long whole = Math.DivRem(cycle, f, out long rem) * PsPerKHzCycle;
        // rem < f <= 10^9, so rem * 10^9 < 10^18 fits in a long.
        long part = (rem * PsPerKHzCycle + f - 1) / f;
        return whole + part;
    }

    /// <summary>Index of the first edge at or after <paramref name="time"/>.</summary>
    public long EdgeIndexAtOrAfter(long time)
    {
        Int128 num = (Int128)time * FrequencyKHz;
        Int128 k = num / PsPerKHzCycle;
        if (k * PsPerKHzCycle < num) k++;
        long idx = (long)k;
        // ceil rounding of edge times can make edge k land one ps later than k*P; correct for it.
        while (idx > 0 && EdgeTime(idx - 1) >= time) idx--;
        while (EdgeTime(idx) < time) idx++;
        return idx;
    }

    /// <summary>The time <paramref name="cycles"/> edges after the first edge at or after <paramref name="now"/>.
    /// <c>EdgeAfter(now, 0)</c> aligns to the next edge (or now, if now is an edge).</summary>
    public long EdgeAfter(long now, long cycles) => EdgeTime(EdgeIndexAtOrAfter(now) + cycles);

    /// <summary>Duration of <paramref name="cycles"/> cycles in ps, rounded up.</summary>
    public long CyclesToPs(long cycles) => EdgeTime(cycles);

    public override string ToString() => $"{Name}@{FrequencyMHz}MHz";
}
