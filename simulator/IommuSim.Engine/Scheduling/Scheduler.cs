using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace IommuSim.Engine.Scheduling;

/// <summary>
/// The discrete-event scheduler: a 4-ary min-heap of events ordered by (time, priority, insertion
/// sequence), so execution order is fully deterministic. Scheduling and executing an event allocate
/// nothing once the arrays have grown.
/// </summary>
/// <remarks>
/// Layout, for speed: the heap itself holds only 16-byte keys (time, priority|sequence) plus, in a parallel
/// array, the index of a payload slot (handler, kind, arg, payload). Sifting therefore moves plain integers
/// (no GC write barriers, four sibling keys in one 64-byte line) and the payload is written once when
/// scheduled and read once when executed; slots are recycled through a free stack. The heap is stored
/// from index <see cref="Root"/> = 3, so the four children of any node start at a multiple of four.
/// RemoveTop moves the hole down to a leaf along the smallest children (branch-free selection) and then
/// sifts the former last element up from there (Floyd's/Wegener's bottom-up variant).
/// </remarks>
public sealed class Scheduler
{
    /// <summary>Priorities run lowest first among events at the same time.</summary>
    public const byte DefaultPriority = 128;

    private const int SeqBits = 56;
    private const ulong SeqMask = (1UL << SeqBits) - 1;
    private const int Root = 3;

    private Key[] _keys;         // heap of keys, physical indices Root .. Root + _count - 1
    private int[] _slotOf;       // parallel to _keys: payload slot of each heap entry
    private EventData[] _payloads; // by slot
    private int[] _freeSlots;    // stack of unused slots
    private int _freeCount;
    private int _count;
    private ulong _seq;
    private bool _stopRequested;

    public Scheduler(int initialCapacity = 1024)
    {
        int capacity = Math.Max(4, initialCapacity);
        _keys = new Key[capacity + Root];
        _slotOf = new int[capacity + Root];
        _payloads = new EventData[capacity];
        _freeSlots = new int[capacity];
        PushFreeSlots(0, capacity);
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
        Insert(time, ((ulong)priority << SeqBits) | (_seq++ & SeqMask), handler, kind, arg, payload);
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
    public long PeekTime => _count > 0 ? _keys[Root].Time : long.MaxValue;

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
            long time = _keys[Root].Time;
            if (time > untilTime)
            {
                if (untilTime > Now) Now = untilTime; // time never moves backwards
                return RunOutcome.TimeLimit;
            }
            Execute(time);
            if (_stopRequested) return RunOutcome.Stopped;
            if (stopWhen != null && stopWhen()) return RunOutcome.Predicate;
        }
        return RunOutcome.Drained;
    }

    /// <summary>Executes exactly one event if one is pending; returns false when none.</summary>
    public bool Step()
    {
        if (_count == 0) return false;
        Execute(_keys[Root].Time);
        return true;
    }

    /// <summary>Drops every pending event (used at teardown; time is kept).</summary>
    public void Clear()
    {
        Array.Clear(_payloads);
        _count = 0;
        _freeCount = 0;
        PushFreeSlots(0, _payloads.Length);
    }

    /// <summary>Pops the top event (whose time the caller read) and calls its handler.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Execute(long time)
    {
        int slot = _slotOf[Root];
        RemoveTop();
        ref EventData p = ref _payloads[slot];
        IEventHandler handler = p.Handler;
        object? payload = p.Payload;
        long arg = p.Arg;
        int kind = p.Kind;
        p = default; // drop references so executed payloads can be collected
        _freeSlots[_freeCount++] = slot;
        Now = time;
        Executed++;
        handler.OnEvent(kind, arg, payload);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Insert(long time, ulong order, IEventHandler handler, int kind, long arg, object? payload)
    {
        if (_freeCount == 0) Grow();
        int slot = _freeSlots[--_freeCount];
        _payloads[slot] = new EventData(handler, payload, arg, kind);
        SiftUp(Root + _count++, time, order, slot);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Less(long aTime, ulong aOrder, in Key b)
        => aTime < b.Time || (aTime == b.Time && aOrder < b.Order);

    /// <summary>1 if a &lt; b in (time, order), else 0, computed without branches: in the child selection
    /// the outcome is unpredictable, and a mispredicted branch costs more than the whole comparison.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int LessBit(ref Key a, ref Key b)
    {
        long at = a.Time, bt = b.Time;
        return (at < bt ? 1 : 0) | ((at == bt ? 1 : 0) & (a.Order < b.Order ? 1 : 0));
    }

    private void SiftUp(nint hole, long time, ulong order, int slot)
    {
        ref Key keys = ref MemoryMarshal.GetArrayDataReference(_keys);
        ref int slots = ref MemoryMarshal.GetArrayDataReference(_slotOf);
        while (hole > Root)
        {
            nint parent = (hole >> 2) + 2;
            ref Key pk = ref Unsafe.Add(ref keys, parent);
            if (!Less(time, order, pk)) break;
            Unsafe.Add(ref keys, hole) = pk;
            Unsafe.Add(ref slots, hole) = Unsafe.Add(ref slots, parent);
            hole = parent;
        }
        ref Key k = ref Unsafe.Add(ref keys, hole);
        k.Time = time;
        k.Order = order;
        Unsafe.Add(ref slots, hole) = slot;
    }

    private void RemoveTop()
    {
        int n = --_count;
        if (n == 0) return;
        ref Key keys = ref MemoryMarshal.GetArrayDataReference(_keys);
        ref int slots = ref MemoryMarshal.GetArrayDataReference(_slotOf);
        nint end = Root + n; // physical index of the last entry, which leaves the heap and is re-inserted
        Key last = Unsafe.Add(ref keys, end);
        int lastSlot = Unsafe.Add(ref slots, end);

        // Move the hole from the root to a leaf, always promoting the smallest child.
        nint hole = Root;
        nint c = 4; // first child of the root
        while (c + 3 < end)
        {
            ref Key kc = ref Unsafe.Add(ref keys, c);
            nint m01 = c + LessBit(ref Unsafe.Add(ref kc, 1), ref kc);
            nint m23 = c + 2 + LessBit(ref Unsafe.Add(ref kc, 3), ref Unsafe.Add(ref kc, 2));
            nint best = m01 + ((m23 - m01) & -(nint)LessBit(ref Unsafe.Add(ref keys, m23), ref Unsafe.Add(ref keys, m01)));
            Unsafe.Add(ref keys, hole) = Unsafe.Add(ref keys, best);
            Unsafe.Add(ref slots, hole) = Unsafe.Add(ref slots, best);
            hole = best;
            c = (hole << 2) - 8;
        }
        if (c < end)
        {
            nint best = c;
            for (nint j = c + 1; j < end; j++)
                best += (j - best) & -(nint)LessBit(ref Unsafe.Add(ref keys, j), ref Unsafe.Add(ref keys, best));
            Unsafe.Add(ref keys, hole) = Unsafe.Add(ref keys, best);
            Unsafe.Add(ref slots, hole) = Unsafe.Add(ref slots, best);
            hole = best;
        }

        // Then bring the former last entry up from that leaf to its place (usually zero or one level).
        SiftUp(hole, last.Time, last.Order, lastSlot);
    }

    private void Grow()
    {
        int old = _payloads.Length;
        int capacity = checked(old * 2);
        Array.Resize(ref _keys, capacity + Root);
        Array.Resize(ref _slotOf, capacity + Root);
        Array.Resize(ref _payloads, capacity);
        Array.Resize(ref _freeSlots, capacity);
        PushFreeSlots(old, capacity);
    }

    /// <summary>Pushes slots [from, to) so that the lowest one is popped first.</summary>
    private void PushFreeSlots(int from, int to)
    {
        for (int s = to - 1; s >= from; s--) _freeSlots[_freeCount++] = s;
    }

    private void ThrowPast(long time)
        => throw new InvalidOperationException($"cannot schedule at {time} ps, before now ({Now} ps)");

    private struct Key
    {
        public long Time;
        public ulong Order; // priority in the top 8 bits, insertion sequence below
    }

    private readonly struct EventData(IEventHandler handler, object? payload, long arg, int kind)
    {
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
