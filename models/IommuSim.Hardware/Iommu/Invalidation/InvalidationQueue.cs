using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Observers;

namespace IommuSim.Hardware.Iommu.Invalidation;

/// <summary>Applies a descriptor's effect to the caches when the hardware finishes it.</summary>
public interface IInvalidationTarget
{
    /// <summary>Extra time (ps) the descriptor needs beyond its processing cycles (device-TLB round trips).</summary>
    long ExtraLatencyPs(in InvalidationDescriptor d);
    void Apply(in InvalidationDescriptor d);
}

/// <summary>
/// The invalidation queue (VT-d spec §6.5.2, queued invalidation interface): software appends descriptors; hardware processes them strictly in order,
/// each taking <c>descriptorCycles</c> IOMMU cycles (plus the device's answer for device-TLB
/// invalidations), and applies its effect when done. A wait descriptor completes once every
/// earlier descriptor has. Tickets let software wait for any descriptor.
/// </summary>
public sealed class InvalidationQueue : IEventHandler, IResettable
{
    private readonly InvalidationOptions _options;
    private readonly Scheduler _sched;
    private readonly ClockDomain _clock;
    private readonly Queue<(long Ticket, InvalidationDescriptor D)> _queue = new();
    private IInvalidationTarget? _target;
    private long _nextTicket = 1;
    private long _completed;
    private bool _busy;
    private long _busyStart;
    private long _currentStart;

    public InvalidationQueue(InvalidationOptions options, Scheduler sched, ClockDomain clock)
    {
        _options = options;
        _sched = sched;
        _clock = clock;
    }

    internal void Attach(IInvalidationTarget target) => _target = target;

    /// <summary>Hooks (tracing, stale-translation bookkeeping); null when nobody listens.</summary>
    public HardwareObserver? Observer { get; internal set; }

    public long Descriptors { get; private set; }
    public long DescriptorsByType(InvalidationType t) => _byType[(int)t];
    private readonly long[] _byType = new long[Enum.GetValues<InvalidationType>().Length];
    public long BusyPs { get; private set; }

    /// <summary>Busy time up to <paramref name="now"/>, including a busy period still in progress.</summary>
    public long BusyPsAt(long now) => BusyPs + (_busy ? now - _busyStart : 0);
    public int MaxDepth { get; private set; }
    /// <summary>Submissions that found the queue full (software would spin; the model accepts and counts).</summary>
    public long FullStalls { get; private set; }
    public int Depth => _queue.Count;

    /// <summary>Appends a descriptor; returns its ticket.</summary>
    public long Submit(in InvalidationDescriptor d)
    {
        if (_queue.Count >= _options.QueueEntries) FullStalls++;
        long ticket = _nextTicket++;
        _queue.Enqueue((ticket, d));
        MaxDepth = Math.Max(MaxDepth, _queue.Count);
        Observer?.OnInvalidationSubmitted(d, ticket);
        if (!_busy) StartNext();
        return ticket;
    }

    /// <summary>Raised after each descriptor completes (its ticket): software waiting on a wait descriptor polls this.</summary>
    public event Action<long>? Completed;

    /// <summary>True when the descriptor with this ticket (and so every earlier one) is done.</summary>
    public bool IsComplete(long ticket) => ticket <= _completed;

    public bool Idle => !_busy && _queue.Count == 0;

    private void StartNext()
    {
        if (_queue.Count == 0) { _busy = false; return; }
        if (!_busy) _busyStart = _sched.Now;
        _busy = true;
        _currentStart = _sched.Now;
        var (_, d) = _queue.Peek();
        long done = _clock.EdgeAfter(_sched.Now, _options.DescriptorCycles) + (_target?.ExtraLatencyPs(d) ?? 0);
        _sched.ScheduleAt(done, this);
    }

    public void OnEvent(int kind, long arg, object? payload)
    {
        var (ticket, d) = _queue.Dequeue();
        _target?.Apply(d);
        Observer?.OnInvalidationApplied(d, _currentStart);
        Descriptors++;
        _byType[(int)d.Type]++;
        _completed = ticket;
        Completed?.Invoke(ticket);
        if (_queue.Count == 0)
        {
            BusyPs += _sched.Now - _busyStart;
            _busy = false;
        }
        else StartNext();
    }

    public void Reset()
    {
        Descriptors = 0;
        Array.Clear(_byType);
        BusyPs = 0;
        MaxDepth = 0;
        FullStalls = 0;
        if (_busy) _busyStart = _sched.Now;
    }
}
