using IommuSim.Engine.Scheduling;

namespace IommuSim.Engine.Tests.Scheduling;

/// <summary>
/// Random schedules, including events scheduled from inside handlers, must pop in sorted
/// (time, priority, insertion sequence) order, compared against a simple reference model.
/// </summary>
public class SchedulerPropertyTests
{
    /// <summary>Each event's arg is its global insertion number, so (time, priority, arg) is the expected key.</summary>
    private sealed class Probe(Scheduler s, Random rng, int maxChildren, long maxDelay, bool manyTies) : IEventHandler
    {
        public readonly Dictionary<long, (long Time, byte Priority)> Scheduled = [];
        public readonly List<(long Time, byte Priority, long Seq)> Popped = [];
        /// <summary>Reference model: every pending event's key; each pop must be its minimum.</summary>
        public readonly SortedSet<(long Time, byte Priority, long Seq)> Pending = [];
        public long NextSeq;
        public int Budget;

        public void Add(long time, byte priority)
        {
            long seq = NextSeq++;
            Scheduled[seq] = (time, priority);
            Assert.True(Pending.Add((time, priority, seq)));
            s.ScheduleAt(time, this, arg: seq, priority: priority);
        }

        public long RandomDelay() => manyTies ? rng.Next(0, 4) * 10 : rng.NextInt64(0, maxDelay + 1);

        public byte RandomPriority() => manyTies ? (byte)(rng.Next(0, 3) * 100) : (byte)rng.Next(0, 256);

        public void OnEvent(int kind, long arg, object? payload)
        {
            var (time, prio) = Scheduled[arg];
            Assert.Equal(time, s.Now);
            Assert.Equal(Pending.Min, (time, prio, arg));
            Pending.Remove((time, prio, arg));
            Popped.Add((time, prio, arg));
            int children = rng.Next(0, maxChildren + 1);
            for (int i = 0; i < children && Budget > 0; i++, Budget--)
                Add(s.Now + RandomDelay(), RandomPriority());
        }
    }

    private static int Compare((long Time, byte Priority, long Seq) a, (long Time, byte Priority, long Seq) b)
    {
        int c = a.Time.CompareTo(b.Time);
        if (c != 0) return c;
        c = a.Priority.CompareTo(b.Priority);
        return c != 0 ? c : a.Seq.CompareTo(b.Seq);
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    [InlineData(3, false)]
    [InlineData(4, true)]
    public void RandomSchedulesPopInSortedOrder(int seed, bool manyTies)
    {
        for (int iteration = 0; iteration < 40; iteration++)
        {
            var rng = new Random(seed * 1000 + iteration);
            var s = new Scheduler(initialCapacity: rng.Next(1, 64));
            var probe = new Probe(s, rng, maxChildren: rng.Next(0, 4), maxDelay: rng.Next(1, 5000), manyTies)
            {
                Budget = rng.Next(0, 2000),
            };
            int initial = rng.Next(1, 500);
            for (int i = 0; i < initial; i++) probe.Add(probe.RandomDelay(), probe.RandomPriority());

            s.Run();

            Assert.Equal(probe.NextSeq, probe.Popped.Count);
            Assert.Equal(probe.NextSeq, s.Executed);
            Assert.Empty(probe.Pending);
            Assert.Equal(probe.NextSeq, probe.Popped.Select(p => p.Seq).Distinct().Count());
            for (int i = 1; i < probe.Popped.Count; i++)
            {
                var (prev, cur) = (probe.Popped[i - 1], probe.Popped[i]);
                // Time never goes back. At equal times an event scheduled by an earlier handler may have a
                // smaller priority than the one that created it, but it must have been created later.
                Assert.True(prev.Time < cur.Time
                    || (prev.Time == cur.Time && (Compare(prev, cur) < 0 || cur.Seq > prev.Seq)),
                    $"seed {seed}/{iteration}: event {cur} popped after {prev}");
            }
        }
    }

    /// <summary>
    /// Delays mixing zero, short, long and huge (up to ~10^15 ps) spans, so that the scheduler's internal
    /// buckets are rebuilt with very different widths and outliers sit far in the future.
    /// </summary>
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void MixedScaleSchedulesPopInOrder(int seed)
    {
        var rng = new Random(seed);
        for (int iteration = 0; iteration < 10; iteration++)
        {
            var s = new Scheduler(initialCapacity: rng.Next(1, 200));
            var probe = new MixedProbe(s, rng) { Budget = rng.Next(100, 20_000) };
            int initial = rng.Next(1, 2000);
            for (int i = 0; i < initial; i++) probe.Add(probe.RandomDelay());
            // run in slices with PeekTime checks, sometimes one Step at a time
            while (s.Pending > 0)
            {
                long peek = s.PeekTime;
                Assert.Equal(probe.Pending.Min.Time, peek);
                switch (rng.Next(3))
                {
                    case 0: Assert.True(s.Step()); break;
                    case 1: s.Run(untilTime: peek + rng.NextInt64(0, 1_000_000)); break;
                    default: s.Run(stopWhen: () => rng.Next(50) == 0); break;
                }
            }
            Assert.Empty(probe.Pending);
            Assert.Equal(probe.NextSeq, s.Executed);
        }
    }

    private sealed class MixedProbe(Scheduler s, Random rng) : IEventHandler
    {
        public readonly SortedSet<(long Time, byte Priority, long Seq)> Pending = [];
        private readonly Dictionary<long, (long Time, byte Priority)> _byArg = [];
        public long NextSeq;
        public int Budget;

        public long RandomDelay() => rng.Next(10) switch
        {
            0 => 0,
            1 or 2 => rng.Next(0, 4),
            3 or 4 or 5 => rng.Next(0, 5_000),
            6 or 7 => rng.NextInt64(0, 10_000_000),
            8 => rng.NextInt64(0, 1_000_000_000_000),
            _ => rng.Next(4) == 0 ? rng.NextInt64(0, 1_000_000_000_000_000) : 1000,
        };

        public void Add(long delay)
        {
            long seq = NextSeq++;
            byte prio = (byte)(rng.Next(4) * 64);
            long time = s.Now + delay;
            _byArg[seq] = (time, prio);
            Pending.Add((time, prio, seq));
            s.ScheduleAt(time, this, arg: seq, priority: prio);
        }

        public void OnEvent(int kind, long arg, object? payload)
        {
            var (time, prio) = _byArg[arg];
            Assert.Equal(time, s.Now);
            Assert.Equal(Pending.Min, (time, prio, arg));
            Pending.Remove((time, prio, arg));
            int children = rng.Next(0, 3);
            for (int i = 0; i < children && Budget > 0; i++, Budget--) Add(RandomDelay());
        }
    }

    [Fact]
    public void ClearThenReuseKeepsOrder()
    {
        var rng = new Random(99);
        var s = new Scheduler(initialCapacity: 4);
        var probe = new MixedProbe(s, rng) { Budget = 0 };
        for (int round = 0; round < 20; round++)
        {
            for (int i = 0; i < 500; i++) probe.Add(probe.RandomDelay());
            s.Run(untilTime: s.Now + rng.NextInt64(0, 5_000_000));
            s.Clear();
            probe.Pending.Clear();
            Assert.Equal(0, s.Pending);
            Assert.Equal(long.MaxValue, s.PeekTime);
        }
        for (int i = 0; i < 3000; i++) probe.Add(probe.RandomDelay());
        s.Run();
        Assert.Empty(probe.Pending);
    }

    /// <summary>Without handler-side scheduling, the pop order equals a sort of everything scheduled.</summary>
    [Fact]
    public void PopOrderEqualsSortedReference()
    {
        for (int iteration = 0; iteration < 50; iteration++)
        {
            var rng = new Random(777 + iteration);
            var s = new Scheduler(initialCapacity: 8);
            var probe = new Probe(s, rng, maxChildren: 0, maxDelay: rng.Next(1, 100), manyTies: iteration % 2 == 0);
            int n = rng.Next(1, 3000);
            for (int i = 0; i < n; i++) probe.Add(probe.RandomDelay(), probe.RandomPriority());
            var expected = probe.Scheduled.Select(kv => (kv.Value.Time, kv.Value.Priority, Seq: kv.Key)).ToList();
            expected.Sort(Compare);
            s.Run();
            Assert.Equal(expected, probe.Popped);
        }
    }

    /// <summary>Interleaved Run(until) slices give exactly the same order as one full run.</summary>
    [Fact]
    public void RunningInSlicesGivesTheSameOrder()
    {
        static List<(long, byte, long)> RunOnce(int seed, bool slices)
        {
            var rng = new Random(seed);
            var s = new Scheduler();
            var probe = new Probe(s, rng, maxChildren: 2, maxDelay: 300, manyTies: false) { Budget = 5000 };
            for (int i = 0; i < 200; i++) probe.Add(probe.RandomDelay(), probe.RandomPriority());
            if (slices)
            {
                long t = 0;
                while (s.Pending > 0) s.Run(t += 97);
            }
            else
            {
                s.Run();
            }
            return probe.Popped;
        }

        for (int seed = 0; seed < 5; seed++)
            Assert.Equal(RunOnce(seed, slices: false), RunOnce(seed, slices: true));
    }
}
