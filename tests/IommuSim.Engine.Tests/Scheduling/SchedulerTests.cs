using IommuSim.Engine.Scheduling;

namespace IommuSim.Engine.Tests.Scheduling;

/// <summary>Records every event it receives as (now, kind, arg) and can run a callback per event.</summary>
internal sealed class Recorder(Scheduler scheduler) : IEventHandler
{
    public List<(long Time, int Kind, long Arg, object? Payload)> Seen { get; } = [];
    public Action<int, long>? OnEach { get; set; }

    public void OnEvent(int kind, long arg, object? payload)
    {
        Seen.Add((scheduler.Now, kind, arg, payload));
        OnEach?.Invoke(kind, arg);
    }
}

public class SchedulerTests
{
    [Fact]
    public void EventsRunInTimeOrder()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        s.ScheduleAt(300, r, arg: 3);
        s.ScheduleAt(100, r, arg: 1);
        s.ScheduleAt(200, r, arg: 2);
        Assert.Equal(RunOutcome.Drained, s.Run());
        Assert.Equal([(100L, 1L), (200L, 2L), (300L, 3L)], r.Seen.Select(e => (e.Time, e.Arg)).ToArray());
        Assert.Equal(300, s.Now);
        Assert.Equal(3, s.Executed);
        Assert.Equal(0, s.Pending);
    }

    [Fact]
    public void SameTimeRunsByPriorityThenInsertionOrder()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        s.ScheduleAt(50, r, arg: 1, priority: 200);
        s.ScheduleAt(50, r, arg: 2);                 // default 128
        s.ScheduleAt(50, r, arg: 3, priority: 0);
        s.ScheduleAt(50, r, arg: 4, priority: 200);
        s.ScheduleAt(50, r, arg: 5);
        s.ScheduleAt(50, r, arg: 6, priority: 0);
        s.ScheduleAt(49, r, arg: 7, priority: 255);  // earlier time beats any priority
        s.ScheduleAt(50, r, arg: 8, priority: 255);
        s.Run();
        Assert.Equal([7L, 3L, 6L, 2L, 5L, 1L, 4L, 8L], r.Seen.Select(e => e.Arg).ToArray());
    }

    [Fact]
    public void ManySameTimeEventsKeepInsertionOrder()
    {
        var s = new Scheduler(initialCapacity: 4); // forces several Grow()s
        var r = new Recorder(s);
        for (int i = 0; i < 1000; i++) s.ScheduleAt(7, r, arg: i);
        s.Run();
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (long)i), r.Seen.Select(e => e.Arg));
    }

    [Fact]
    public void KindArgAndPayloadAreDelivered()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        var payload = new object();
        s.ScheduleAt(10, r, kind: 42, arg: -9, payload: payload);
        s.Run();
        var e = Assert.Single(r.Seen);
        Assert.Equal((10L, 42, -9L), (e.Time, e.Kind, e.Arg));
        Assert.Same(payload, e.Payload);
    }

    [Fact]
    public void SchedulingInThePastThrows()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        s.ScheduleAt(1000, r);
        s.Run();
        Assert.Equal(1000, s.Now);
        Assert.Throws<InvalidOperationException>(() => s.ScheduleAt(999, r));
        Assert.Throws<InvalidOperationException>(() => s.ScheduleIn(-1, r));
        Assert.Equal(0, s.Pending);
        s.ScheduleAt(1000, r); // "now" itself is allowed
        s.ScheduleIn(0, r);
        Assert.Equal(2, s.Pending);
    }

    [Fact]
    public void SchedulingInThePastFromAHandlerThrowsOutOfRun()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        r.OnEach = (_, _) => s.ScheduleAt(s.Now - 1, r);
        s.ScheduleAt(5, r);
        Assert.Throws<InvalidOperationException>(() => s.Run());
    }

    [Fact]
    public void ScheduleInIsRelativeToNow()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        r.OnEach = (kind, _) =>
        {
            if (kind == 0) s.ScheduleIn(25, r, kind: 1);
        };
        s.ScheduleAt(100, r);
        s.Run();
        Assert.Equal([(100L, 0), (125L, 1)], r.Seen.Select(e => (e.Time, e.Kind)).ToArray());
    }

    [Fact]
    public void RunUntilStopsBeforeLaterEventsAndAdvancesTime()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        foreach (long t in new long[] { 10, 20, 30, 40 }) s.ScheduleAt(t, r, arg: t);

        Assert.Equal(RunOutcome.TimeLimit, s.Run(untilTime: 25));
        Assert.Equal([10L, 20L], r.Seen.Select(e => e.Arg).ToArray());
        Assert.Equal(25, s.Now);
        Assert.Equal(2, s.Pending);
        Assert.Equal(30, s.PeekTime);

        // An event exactly at the limit still runs.
        Assert.Equal(RunOutcome.TimeLimit, s.Run(untilTime: 30));
        Assert.Equal(30, s.Now);
        Assert.Equal([10L, 20L, 30L], r.Seen.Select(e => e.Arg).ToArray());

        // Scheduling relative to the advanced time works.
        s.ScheduleIn(5, r, arg: 35);
        Assert.Equal(RunOutcome.Drained, s.Run());
        Assert.Equal([10L, 20L, 30L, 35L, 40L], r.Seen.Select(e => e.Arg).ToArray());
        Assert.Equal(long.MaxValue, s.PeekTime);
    }

    [Fact]
    public void RunUntilAnEarlierTimeNeverMovesTimeBackwards()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        s.ScheduleAt(100, r);
        s.ScheduleAt(500, r);
        s.Run(untilTime: 200);
        Assert.Equal(200, s.Now);

        Assert.Equal(RunOutcome.TimeLimit, s.Run(untilTime: 150));
        Assert.Equal(200, s.Now);
        Assert.Throws<InvalidOperationException>(() => s.ScheduleAt(199, r));
    }

    [Fact]
    public void StopReturnsAfterTheCurrentEventAndRunResumes()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        r.OnEach = (_, arg) =>
        {
            if (arg == 2) s.Stop();
        };
        for (int i = 1; i <= 4; i++) s.ScheduleAt(i * 10, r, arg: i);

        Assert.Equal(RunOutcome.Stopped, s.Run());
        Assert.True(s.StopRequested);
        Assert.Equal([1L, 2L], r.Seen.Select(e => e.Arg).ToArray());
        Assert.Equal(20, s.Now);
        Assert.Equal(2, s.Pending);

        Assert.Equal(RunOutcome.Drained, s.Run());
        Assert.False(s.StopRequested);
        Assert.Equal([1L, 2L, 3L, 4L], r.Seen.Select(e => e.Arg).ToArray());
    }

    [Fact]
    public void StopWhenPredicateIsCheckedAfterEachEvent()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        for (int i = 1; i <= 10; i++) s.ScheduleAt(i, r, arg: i);
        int calls = 0;
        Assert.Equal(RunOutcome.Predicate, s.Run(stopWhen: () => ++calls == 3));
        Assert.Equal(3, calls);
        Assert.Equal(3, r.Seen.Count);
        Assert.Equal(3, s.Now);
        Assert.Equal(7, s.Pending);

        Assert.Equal(RunOutcome.Predicate, s.Run(stopWhen: () => r.Seen.Count >= 8));
        Assert.Equal(8, r.Seen.Count);
        Assert.Equal(RunOutcome.Drained, s.Run(stopWhen: () => false));
        Assert.Equal(10, r.Seen.Count);
    }

    [Fact]
    public void StepRunsExactlyOneEvent()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        Assert.False(s.Step());
        s.ScheduleAt(5, r, arg: 1);
        s.ScheduleAt(3, r, arg: 2);
        Assert.True(s.Step());
        Assert.Equal(3, s.Now);
        Assert.Equal([2L], r.Seen.Select(e => e.Arg).ToArray());
        Assert.True(s.Step());
        Assert.False(s.Step());
        Assert.Equal(2, s.Executed);
        s.ResetExecutedCount();
        Assert.Equal(0, s.Executed);
    }

    [Fact]
    public void ClearDropsPendingEventsAndKeepsTime()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        s.ScheduleAt(10, r);
        s.Run();
        for (int i = 0; i < 100; i++) s.ScheduleAt(20 + i, r);
        s.Clear();
        Assert.Equal(0, s.Pending);
        Assert.Equal(10, s.Now);
        Assert.Equal(long.MaxValue, s.PeekTime);
        Assert.Equal(RunOutcome.Drained, s.Run());
        Assert.Single(r.Seen);
        // usable again after Clear
        s.ScheduleAt(11, r, arg: 5);
        s.Run();
        Assert.Equal(5, r.Seen[^1].Arg);
    }

    [Fact]
    public void ClearDoesNotKeepPayloadsAlive()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        var weak = ScheduleWithGarbagePayload(s, r);
        s.Clear();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(weak.TryGetTarget(out _));
    }

    [Fact]
    public void ExecutedEventsDoNotKeepPayloadsAlive()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        var weak = ScheduleWithGarbagePayload(s, r);
        s.Run();
        r.Seen.Clear();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(weak.TryGetTarget(out _));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference<object> ScheduleWithGarbagePayload(Scheduler s, IEventHandler h)
    {
        var payload = new byte[1024];
        for (int i = 0; i < 8; i++) s.ScheduleAt(1 + i, h, payload: i == 3 ? payload : null);
        return new WeakReference<object>(payload);
    }
}

public class SchedulerExtremeTimeTests
{
    [Fact]
    public void EventsAtTheEndOfTimeKeepPriorityAndInsertionOrder()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        const long End = long.MaxValue;
        s.ScheduleAt(End, r, arg: 1, priority: 200);
        s.ScheduleAt(End - 1, r, arg: 2);
        s.ScheduleAt(End, r, arg: 3, priority: 10);
        r.OnEach = (_, arg) =>
        {
            // scheduled while other events at the same (last) time are pending
            if (arg == 3) s.ScheduleAt(End, r, arg: 4, priority: 0);
        };
        s.Run();
        Assert.Equal([2L, 3L, 4L, 1L], r.Seen.Select(e => e.Arg).ToArray());
        Assert.Equal(End, s.Now);
    }

    [Fact]
    public void HugeSpreadBetweenEventsKeepsOrder()
    {
        var s = new Scheduler();
        var r = new Recorder(s);
        long[] times = [long.MaxValue - 5, 0, 1, 1L << 62, 3, 1L << 40, 2, long.MaxValue, 1L << 20];
        for (int i = 0; i < times.Length; i++) s.ScheduleAt(times[i], r, arg: times[i]);
        s.Run();
        Assert.Equal(times.Order().ToArray(), r.Seen.Select(e => e.Arg).ToArray());
    }
}
