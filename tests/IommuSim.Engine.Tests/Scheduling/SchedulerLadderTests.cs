using IommuSim.Engine.Scheduling;

namespace IommuSim.Engine.Tests.Scheduling;

/// <summary>
/// Pop order with enough pending events for the chunked rung 0 (more than <see cref="Scheduler.LinkedTopLimit"/>),
/// with clusters dense enough to be split over several deeper rungs, ties, and events scheduled into every level
/// (the loaded range, split buckets, rung 0 and the far list) while it runs. Compared with a sorted reference.
/// </summary>
public class SchedulerLadderTests
{
    private sealed class HoldProbe(Scheduler s, Random rng, Func<Random, long> delay) : IEventHandler
    {
        public readonly SortedSet<(long Time, byte Priority, long Seq)> Pending = [];
        private readonly Dictionary<long, (long Time, byte Priority)> _byArg = [];
        public long NextSeq;
        public long Remaining;

        public void Add(long time)
        {
            long seq = NextSeq++;
            byte prio = (byte)(rng.Next(3) * 64);
            _byArg[seq] = (time, prio);
            Pending.Add((time, prio, seq));
            s.ScheduleAt(time, this, kind: (int)(seq & 7), arg: seq, payload: seq % 5 == 0 ? this : null, priority: prio);
        }

        public void OnEvent(int kind, long arg, object? payload)
        {
            var (time, prio) = _byArg[arg];
            Assert.Equal(time, s.Now);
            Assert.Equal(Pending.Min, (time, prio, arg));
            Assert.Equal((int)(arg & 7), kind);
            Assert.Equal(arg % 5 == 0 ? this : null, payload);
            Pending.Remove((time, prio, arg));
            _byArg.Remove(arg);
            if (Remaining-- <= 0) return;
            // Mostly one child (the hold model), sometimes none or two, so the pending count drifts.
            int children = rng.Next(20) switch { 0 => 0, 1 => 2, _ => 1 };
            for (int i = 0; i < children; i++) Add(s.Now + delay(rng));
        }
    }

    public static TheoryData<string> Distributions => ["exponential", "clustered", "ties", "mixed"];

    private static Func<Random, long> Delay(string distribution) => distribution switch
    {
        "exponential" => r => (long)(-Math.Log(1 - r.NextDouble()) * 1e9),
        // Most events in a few narrow clusters (dense enough to split several times), the rest spread widely.
        "clustered" => r => r.Next(4) == 0
            ? (long)(-Math.Log(1 - r.NextDouble()) * 1e9)
            : r.Next(1, 4) * 250_000_000L + r.Next(0, 2000),
        // Many events on the same few picoseconds: buckets that cannot be split.
        "ties" => r => r.Next(0, 8) * 1000L,
        _ => r => r.Next(6) switch
        {
            0 => 0,
            1 => r.Next(0, 100),
            2 => r.NextInt64(0, 1_000_000),
            3 => (long)(-Math.Log(1 - r.NextDouble()) * 1e9),
            4 => r.NextInt64(0, 1_000_000_000_000),
            _ => r.Next(50) == 0 ? r.NextInt64(0, 1L << 60) : 5_000,
        },
    };

    [Theory]
    [MemberData(nameof(Distributions))]
    public void LargeQueuesPopInOrder(string distribution)
    {
        var rng = new Random(distribution.GetHashCode(StringComparison.Ordinal) & 0xffff);
        var delay = Delay(distribution);
        var s = new Scheduler(initialCapacity: 16);
        var probe = new HoldProbe(s, rng, delay) { Remaining = 120_000 };
        for (int i = 0; i < 50_000; i++) probe.Add(delay(rng));
        Assert.True(s.Pending > Scheduler.LinkedTopLimit);

        // Slices: Step, Run(until) and Run(stopWhen) stop at different points inside buckets and rungs.
        while (s.Pending > 0)
        {
            Assert.Equal(probe.Pending.Min.Time, s.PeekTime);
            switch (rng.Next(3))
            {
                case 0: Assert.True(s.Step()); break;
                case 1: s.Run(untilTime: s.PeekTime + rng.NextInt64(0, 100_000_000)); break;
                default: s.Run(stopWhen: () => rng.Next(5000) == 0); break;
            }
        }
        Assert.Empty(probe.Pending);
        Assert.Equal(probe.NextSeq, s.Executed);
    }

    [Fact]
    public void ClearInTheChunkedRegimeThenReuse()
    {
        var rng = new Random(5);
        var delay = Delay("mixed");
        var s = new Scheduler();
        var probe = new HoldProbe(s, rng, delay) { Remaining = 0 };
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < 40_000; i++) probe.Add(s.Now + delay(rng));
            s.Run(stopWhen: () => rng.Next(20_000) == 0);
            s.Clear();
            probe.Pending.Clear();
            Assert.Equal(0, s.Pending);
        }
        probe.Remaining = 10_000;
        for (int i = 0; i < 40_000; i++) probe.Add(s.Now + delay(rng));
        s.Run();
        Assert.Empty(probe.Pending);
    }
}
