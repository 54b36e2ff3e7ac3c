using System.Runtime.CompilerServices;

namespace IommuSim.Engine.Scheduling;

/// <summary>
/// The discrete-event scheduler: a 4-ary min-heap of struct events ordered by
/// (time, priority, insertion sequence), so execution order is fully deterministic.
/// Scheduling and executing an event allocate nothing once the heap array has grown.
/// </summary>
public sealed class Scheduler
{
    /// <summary>Priorities run lowest first among events at the same time.</summary>
    public const byte DefaultPriority = 128;

    private const int SeqBits = 56;
    private const ulong SeqMask = (1UL << SeqBits) - 1;

    private Event[] _heap;
    private int _count;
    private ulong _seq;
    private bool _stopRequested;

    public Scheduler(int initialCapacity = 1024)
    {
        _heap = new Event[Math.Max(4, initialCapacity)];
    }

    /// <summary>Current simulated time in ps.</summary>
    public long Now { get; private set; }

    /// <summary>Events executed since construction (or the last <see cref="ResetExecutedCount"/>).</summary>
    public long Executed { get; private set; }

    public int Pending => _count;

    public bool StopRequested => _stopRequested;

    /// <summary>Schedule at absolute time <paramref name="time"/> (≥ Now).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ScheduleAt(long time, IEventHandler handler, int kind = 0, long arg = 0, object? payload = null,
        byte priority = DefaultPriority)
    {
        if (time < Now) ThrowPast(time);
        if (_count == _heap.Length) Grow();
        ulong order = ((ulong)priority << SeqBits) | (_seq++ & SeqMask);
        SiftUp(_count++, new Event(time, order, handler, kind, arg, payload));
    }

    /// <summary>Schedule <paramref name="delay"/> ps from now.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ScheduleIn(long delay, IEventHandler handler, int kind = 0, long arg = 0, object? payload = null,
        byte priority = DefaultPriority)
        => ScheduleAt(Now + delay, handler, kind, arg, payload, priority);

    /// <summary>Ask the run loop to return after the current event.</summary>
    public void Stop() => _stopRequested = true;

    public void ResetExecutedCount() => Executed = 0;

    /// <summary>Time of the earliest pending event, or long.MaxValue when none.</summary>
    public long PeekTime => _count > 0 ? _heap[0].Time : long.MaxValue;

    /// <summary>
    /// Runs events in order until the queue is empty, <see cref="Stop"/> is called, the next event
    /// lies beyond <paramref name="untilTime"/> (time then advances to it), or
    /// <paramref name="stopWhen"/> returns true after an event.
    /// </summary>
    public RunOutcome Run(long untilTime = long.MaxValue, Func<bool>? stopWhen = null)
    {
        _stopRequested = false;
        while (_count > 0)
        {
            ref Event top = ref _heap[0];
            if (top.Time > untilTime)
            {
                if (untilTime > Now) Now = untilTime; // time never moves backwards
                return RunOutcome.TimeLimit;
            }
            Event e = top;
            RemoveTop();
            Now = e.Time;
            Executed++;
            e.Handler.OnEvent(e.Kind, e.Arg, e.Payload);
            if (_stopRequested) return RunOutcome.Stopped;
            if (stopWhen != null && stopWhen()) return RunOutcome.Predicate;
        }
        return RunOutcome.Drained;
    }

    /// <summary>Executes exactly one event if one is pending; returns false when none.</summary>
    public bool Step()
    {
        if (_count == 0) return false;
        Event e = _heap[0];
        RemoveTop();
        Now = e.Time;
        Executed++;
        e.Handler.OnEvent(e.Kind, e.Arg, e.Payload);
        return true;
    }

    /// <summary>Drops every pending event (used at teardown; time is kept).</summary>
    public void Clear()
    {
        Array.Clear(_heap, 0, _count);
        _count = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Less(in Event a, in Event b)
        => a.Time < b.Time || (a.Time == b.Time && a.Order < b.Order);

    private void SiftUp(int i, Event e)
    {
        Event[] h = _heap;
        while (i > 0)
        {
            int parent = (i - 1) >> 2;
            if (!Less(e, h[parent])) break;
            h[i] = h[parent];
            i = parent;
        }
        h[i] = e;
    }

    private void RemoveTop()
    {
        int n = --_count;
        Event[] h = _heap;
        if (n == 0)
        {
            h[0] = default;
            return;
        }
        Event last = h[n];
        h[n] = default;
        int i = 0;
        while (true)
        {
            int c = (i << 2) + 1;
            if (c >= n) break;
            int best = c;
            int end = Math.Min(c + 4, n);
            for (int j = c + 1; j < end; j++)
                if (Less(h[j], h[best])) best = j;
            if (!Less(h[best], last)) break;
            h[i] = h[best];
            i = best;
        }
        h[i] = last;
    }

    private void Grow() => Array.Resize(ref _heap, _heap.Length * 2);

    private void ThrowPast(long time)
        => throw new InvalidOperationException($"cannot schedule at {time} ps, before now ({Now} ps)");

    private readonly struct Event(long time, ulong order, IEventHandler handler, int kind, long arg, object? payload)
    {
        public readonly long Time = time;
        public readonly ulong Order = order;
        public readonly IEventHandler Handler = handler;
        public readonly object? Payload = payload;
        public readonly long Arg = arg;
        public readonly int Kind = kind;
    }
}

public enum RunOutcome
{
    Drained,
    TimeLimit,
    Stopped,
    Predicate,
}
