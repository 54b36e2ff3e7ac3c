using MathNet.Numerics.Distributions;

namespace IommuSim.Workloads.DeviceModels;

/// <summary>
/// Open-loop arrivals (<c>arrival</c>): <c>poisson</c> (exponential gaps), <c>constant</c> (the mean
/// gap, rounded to the picosecond) or <c>bursty</c> (<c>burstSize</c> operations at once, bursts
/// at exponential gaps with the same mean rate). Inter-arrival times come from MathNet's
/// distributions over a run-seeded stream, so they never depend on the host.
/// </summary>
public sealed class ArrivalProcess
{
    private readonly string _arrival;
    private readonly int _burstSize;
    private readonly double _meanGapPs;
    private readonly System.Random _random;

    /// <param name="meanGapPs">Mean time between single arrivals, ps.</param>
    public ArrivalProcess(string arrival, int burstSize, double meanGapPs, System.Random random)
    {
        _arrival = arrival;
        _burstSize = burstSize;
        _meanGapPs = meanGapPs;
        _random = random;
    }

    /// <summary>Gap to the next arrival (≥ 1 ps) and how many operations arrive then.</summary>
    public (long GapPs, int Count) Next()
    {
        switch (_arrival)
        {
            case "constant": return (Math.Max(1, (long)Math.Round(_meanGapPs)), 1);
            case "bursty":
                return (Math.Max(1, (long)Exponential.Sample(_random, 1.0 / (_meanGapPs * _burstSize))), _burstSize);
            default: return (Math.Max(1, (long)Exponential.Sample(_random, 1.0 / _meanGapPs)), 1);
        }
    }
}
