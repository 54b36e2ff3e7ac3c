using IommuSim.Engine.Scheduling;

namespace IommuSim.Benchmarks;

/// <summary>
/// The baseline: the same scheduler contract (deterministic (time, priority, insertion) order,
/// handler + kind + arg + payload per event) built on .NET's <see cref="PriorityQueue{TElement,TPriority}"/>.
/// </summary>
public sealed class PriorityQueueScheduler
{
    private const int SeqBits = 56;
    private const ulong SeqMask = (1UL << SeqBits) - 1;

    private readonly PriorityQueue<Entry, Key> _queue;
    private ulong _seq;
    private bool _stop;

    public PriorityQueueScheduler(int initialCapacity) => _queue = new PriorityQueue<Entry, Key>(initialCapacity);

    public long Now { get; private set; }
    public long Executed { get; private set; }
    public int Pending => _queue.Count;

    public void ScheduleIn(long delay, IEventHandler handler, int kind = 0, long arg = 0, object? payload = null,
        byte priority = Scheduler.DefaultPriority)
    {
        if (delay < 0) throw new InvalidOperationException("cannot schedule in the past");
        ulong order = ((ulong)priority << SeqBits) | (_seq++ & SeqMask);
        _queue.Enqueue(new Entry(handler, payload, arg, kind), new Key(Now + delay, order));
    }

    public void Stop() => _stop = true;

    public void Run()
    {
        _stop = false;
        while (_queue.TryDequeue(out Entry e, out Key k))
        {
            Now = k.Time;
            Executed++;
            e.Handler.OnEvent(e.Kind, e.Arg, e.Payload);
            if (_stop) return;
        }
    }

    private readonly record struct Entry(IEventHandler Handler, object? Payload, long Arg, int Kind);

    /// <summary>A value-type key with IComparable, so PriorityQueue's default-comparer path is devirtualised.</summary>
    private readonly record struct Key(long Time, ulong Order) : IComparable<Key>
    {
        public int CompareTo(Key other)
        {
            if (Time != other.Time) return Time < other.Time ? -1 : 1;
            return Order.CompareTo(other.Order);
        }
    }
}

/// <summary>The hold model on <see cref="PriorityQueueScheduler"/>, the twin of <see cref="HoldLoop"/>.</summary>
public sealed class PriorityQueueHoldLoop : IEventHandler
{
    private readonly long[] _increments;
    private readonly int _mask;
    private int _next;
    private long _remaining;

    public PriorityQueueHoldLoop(int pending, int seed, double meanIncrementPs = HoldModel.MeanIncrementPs)
    {
        _increments = HoldModel.ExponentialIncrements(seed, meanPs: meanIncrementPs);
        _mask = _increments.Length - 1;
        Scheduler = new PriorityQueueScheduler(pending);
        for (int i = 0; i < pending; i++) Scheduler.ScheduleIn(_increments[_next++ & _mask], this);
    }

    public PriorityQueueScheduler Scheduler { get; }

    public long Run(long events)
    {
        if (events <= 0) return Scheduler.Now;
        _remaining = events;
        Scheduler.Run();
        return Scheduler.Now;
    }

    void IEventHandler.OnEvent(int kind, long arg, object? payload)
    {
        Scheduler.ScheduleIn(_increments[_next++ & _mask], this);
        if (--_remaining == 0) Scheduler.Stop();
    }
}
