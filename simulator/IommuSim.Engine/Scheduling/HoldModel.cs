using System.Diagnostics;

namespace IommuSim.Engine.Scheduling;

/// <summary>
/// The classic "hold model" scheduler benchmark: <c>pending</c> events are kept in the queue; each
/// executed event schedules one more at now + an exponentially distributed increment. The increments
/// are precomputed so that random-number generation is not measured. <c>iommusim bench</c> calls
/// <see cref="Run"/>; the BenchmarkDotNet suite uses <see cref="HoldLoop"/> directly.
/// </summary>
public static class HoldModel
{
    /// <summary>
    /// Mean increment in ps. Large against the number of pending events, so that, as in the classic
    /// continuous-time hold model, equal times are rare; with a mean of, say, 1000 ps and 10^6 pending
    /// events there would be ~1000 events at every picosecond.
    /// </summary>
    public const double MeanIncrementPs = 1e9;

    /// <summary>
    /// Builds a queue of <paramref name="pending"/> events, runs a short warm-up, then executes
    /// <paramref name="events"/> events and returns how many ran and the wall-clock seconds they took.
    /// Allocation-free once the queue is built.
    /// </summary>
    public static (long Events, double Seconds) Run(int pending, long events, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pending, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(events, 1);
        var loop = new HoldLoop(pending, seed);
        loop.Run(Math.Min(events, Math.Max(pending, 10_000))); // warm-up: JIT tiering and caches
        long before = loop.Scheduler.Executed;
        long start = Stopwatch.GetTimestamp();
        loop.Run(events);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return (loop.Scheduler.Executed - before, seconds);
    }

    /// <summary>Exponentially distributed increments (mean <see cref="MeanIncrementPs"/>), a power-of-two count.</summary>
    public static long[] ExponentialIncrements(int seed, int count = 1 << 14, double meanPs = MeanIncrementPs)
    {
        if (!(meanPs >= 0)) throw new ArgumentOutOfRangeException(nameof(meanPs), meanPs, "mean must be >= 0");
        if (count <= 0 || (count & (count - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(count), count, "count must be a power of two");
        var rng = new Random(seed);
        var inc = new long[count];
        for (int i = 0; i < inc.Length; i++)
            inc[i] = (long)(-Math.Log(1.0 - rng.NextDouble()) * meanPs);
        return inc;
    }
}

/// <summary>A scheduler filled with <c>pending</c> hold-model events; <see cref="Run"/> executes more of them.</summary>
public sealed class HoldLoop : IEventHandler
{
    private readonly long[] _increments;
    private readonly int _mask;
    private int _next;
    private long _remaining;

    public HoldLoop(int pending, int seed, double meanIncrementPs = HoldModel.MeanIncrementPs)
    {
        _increments = HoldModel.ExponentialIncrements(seed, meanPs: meanIncrementPs);
        _mask = _increments.Length - 1;
        Scheduler = new Scheduler(Math.Max(4, pending));
        for (int i = 0; i < pending; i++) Scheduler.ScheduleIn(NextIncrement(), this);
    }

    public Scheduler Scheduler { get; }

    /// <summary>Executes <paramref name="events"/> events; the queue keeps its size. Returns the simulated time reached.</summary>
    public long Run(long events)
    {
        if (events <= 0) return Scheduler.Now;
        _remaining = events;
        Scheduler.Run();
        return Scheduler.Now;
    }

    private long NextIncrement() => _increments[_next++ & _mask];

    void IEventHandler.OnEvent(int kind, long arg, object? payload)
    {
        Scheduler.ScheduleIn(NextIncrement(), this);
        if (--_remaining == 0) Scheduler.Stop();
    }
}
