using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace IommuSim.Engine.Scheduling;

/// <summary>
/// The discrete-event scheduler. Events run in (time, priority, insertion sequence) order, so execution
/// is fully deterministic. Scheduling and executing an event allocate nothing once the internal arrays
/// have grown to the largest number of pending events.
/// </summary>
/// <remarks>
/// <para>Structure (a two-rung ladder queue in front of a 4-ary heap):</para>
/// <list type="bullet">
/// <item>Every pending event lives in a <em>slot</em> (time, order, handler, kind, arg, payload),
/// written once when scheduled and read once when executed; slots are recycled through a free stack.</item>
/// <item>The <em>near</em> heap holds (time, order) keys and slot indices of the earliest events, those with
/// <c>(time &gt;&gt; shift) - baseQ &lt; curIdx</c>. It is a 4-ary heap stored from index 3 so that the four children of a
/// node are one 64-byte group of 16-byte keys starting at a multiple of four; sift-down moves the hole to a leaf with a branch-free choice of the smallest child.</item>
/// <item><em>Buckets</em> cover [baseQ + curIdx, baseQ + bucketSpan) in units of 2^shift ps as unsorted linked lists of slots; when the
/// near heap runs empty the next non-empty bucket (found through a bitmap of non-empty buckets) is moved into it.</item>
/// <item>Events beyond the last bucket are appended to the unsorted <em>far</em> array. When the buckets run out, the far
/// array is spread over a fresh set of buckets (about four per event, widths a power of two) covering the part of
/// its time span near its earliest events (the closer half of them and whatever lies within 16 times their distance);
/// the outliers beyond stay in the far array.</item>
/// </list>
/// <para>Every near event is earlier than every bucket event, which is earlier than every far event, and
/// events with equal times always share a structure, so the pop order is exactly that of a single heap ordered
/// by (time, priority, sequence). Each event is moved far → bucket → near; an outlier may be passed over by a
/// few spreads first, but every spread moves at least half of the far array into buckets, so scheduling
/// and running an event costs O(1) amortised plus a heap operation on the (small) near heap. Because outliers
/// do not set the bucket width, a handful of events far in the future (a sampling tick) does not push all the
/// others into one bucket, which would make the near heap an ordinary heap of every pending event.</para>
/// </remarks>
public sealed class Scheduler
{
    /// <summary>Priorities run lowest first among events at the same time.</summary>
    public const byte DefaultPriority = 128;

    private const int SeqBits = 56;
    private const ulong SeqMask = (1UL << SeqBits) - 1;
    private const int Root = 3;               // heap root index; children of i are 4i-8 .. 4i-5
    private const int None = -1;
    private const int BucketsPerEvent = 4;    // buckets per far event when the far array is spread (later inserts add more)
    private const int MaxBuckets = 1 << 22;

    // Slots
    private Slot[] _slots;
    private int[] _next;                      // bucket list links, by slot (kept apart from the slots: small and dense)
    private int[] _freeSlots;
    private int _freeCount;
    private int _count;                       // all pending events

    // Near heap
    private Key[] _keys;
    private int[] _slotOf;
    private int _nearCount;

    // Buckets: bucket i holds events with time >> _shift == _baseQ + i, for i in [_curIdx, _bucketSpan).
    // An event with (time >> _shift) - _baseQ below _curIdx goes to the near heap, at or above _bucketSpan
    // to the far array (relative indices, so nothing overflows even at time long.MaxValue).
    private int[] _bucketHead;
    private ulong[] _bucketBits;              // bit i set: bucket i is non-empty (so emptying scans skip 64 at a time)
    private int _bucketSpan;
    private int _curIdx;
    private int _shift;
    private long _baseQ;

    // Far list: contiguous, so spreading it reads sequentially
    private FarEntry[] _far;
    private int _farCount;
    private long _farMin = long.MaxValue;
    private long _farMax = long.MinValue;

    private ulong _seq;
    private bool _stopRequested;

    public Scheduler(int initialCapacity = 1024)
    {
        int capacity = Math.Max(4, initialCapacity);
        _slots = new Slot[capacity];
        _next = new int[capacity];
        _far = new FarEntry[Math.Min(capacity, 1024)];
        _freeSlots = new int[capacity];
        PushFreeSlots(0, capacity);
        _keys = new Key[Math.Min(capacity, 1024) + Root];
        _slotOf = new int[_keys.Length];
        _bucketHead = new int[64];
        _bucketBits = new ulong[1];
    }

    /// <summary>Current simulated time in ps.</summary>
    public long Now { get; private set; }

    /// <summary>Events executed since construction (or the last <see cref="ResetExecutedCount"/>).</summary>
    public long Executed { get; private set; }

    public int Pending => _count;

    public bool StopRequested => _stopRequested;

    /// <summary>Schedule at absolute time <paramref name="time"/> (≥ Now).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void ScheduleAt(long time, IEventHandler handler, int kind = 0, long arg = 0, object? payload = null,
        byte priority = DefaultPriority)
    {
        if (time < Now) ThrowPast(time);
        Insert(time, ((ulong)priority << SeqBits) | (_seq++ & SeqMask), handler, kind, arg, payload);
    }

    /// <summary>Schedule <paramref name="delay"/> ps from now.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void ScheduleIn(long delay, IEventHandler handler, int kind = 0, long arg = 0, object? payload = null,
        byte priority = DefaultPriority)
        => ScheduleAt(Now + delay, handler, kind, arg, payload, priority);

    /// <summary>Ask the run loop to return after the current event.</summary>
    public void Stop() => _stopRequested = true;

    public void ResetExecutedCount() => Executed = 0;

    /// <summary>Time of the earliest pending event, or long.MaxValue when none.</summary>
    public long PeekTime
    {
        get
        {
            if (_count == 0) return long.MaxValue;
            if (_nearCount == 0) FillNear();
            return _keys[Root].Time;
        }
    }

    /// <summary>
    /// Runs events in order until the queue is empty, <see cref="Stop"/> is called, the next event
    /// lies beyond <paramref name="untilTime"/> (time then advances to it), or
    /// <paramref name="stopWhen"/> returns true after an event.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public RunOutcome Run(long untilTime = long.MaxValue, Func<bool>? stopWhen = null)
    {
        _stopRequested = false;
        while (_count > 0)
        {
            if (_nearCount == 0) FillNear();
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool Step()
    {
        if (_count == 0) return false;
        if (_nearCount == 0) FillNear();
        Execute(_keys[Root].Time);
        return true;
    }

    /// <summary>Drops every pending event (used at teardown; time is kept).</summary>
    public void Clear()
    {
        Array.Clear(_slots);
        _count = 0;
        _freeCount = 0;
        PushFreeSlots(0, _slots.Length);
        _nearCount = 0;
        _bucketSpan = _curIdx = 0;
        _baseQ = 0;
        _shift = 0;
        _farCount = 0;
        _farMin = long.MaxValue;
        _farMax = long.MinValue;
    }

    /// <summary>Pops the near heap's top (whose time the caller read) and calls its handler.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Execute(long time)
    {
        int slot = _slotOf[Root];
        RemoveTop();
        _count--;
        ref Slot s = ref _slots[slot];
        IEventHandler handler = s.Handler!;
        object? payload = s.Payload;
        long arg = s.Arg;
        int kind = s.Kind;
        s.Handler = null; // drop references so executed payloads can be collected
        s.Payload = null;
        _freeSlots[_freeCount++] = slot;
        Now = time;
        Executed++;
        handler.OnEvent(kind, arg, payload);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Insert(long time, ulong order, IEventHandler handler, int kind, long arg, object? payload)
    {
        if (_freeCount == 0) GrowSlots();
        int slot = _freeSlots[--_freeCount];
        ref Slot s = ref _slots[slot];
        s.Time = time;
        s.Order = order;
        s.Handler = handler;
        s.Payload = payload;
        s.Arg = arg;
        s.Kind = kind;
        _count++;
        long rel = (time >> _shift) - _baseQ; // both non-negative: no overflow
        if (rel < _curIdx)
        {
            PushNear(time, order, slot);
        }
        else if (rel < _bucketSpan)
        {
            ref int head = ref _bucketHead[(int)rel];
            _next[slot] = head;
            head = slot;
            _bucketBits[(int)rel >> 6] |= 1UL << (int)rel;
        }
        else
        {
            if (_farCount == _far.Length) Array.Resize(ref _far, _far.Length * 2);
            _far[_farCount++] = new FarEntry(time, slot);
            if (time < _farMin) _farMin = time;
            if (time > _farMax) _farMax = time;
        }
    }

    /// <summary>Near heap is empty and events are pending: move the next bucket in, spreading the far list first if needed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void FillNear()
    {
        while (true)
        {
            // The first non-empty bucket at or after _curIdx: bits are only ever set below _bucketSpan.
            ulong[] bits = _bucketBits;
            int words = (_bucketSpan + 63) >> 6;
            int w = _curIdx >> 6;
            if (w < words)
            {
                ulong word = bits[w] & (ulong.MaxValue << _curIdx);
                while (word == 0 && ++w < words) word = bits[w];
                if (word != 0)
                {
                    int i = (w << 6) + BitOperations.TrailingZeroCount(word);
                    bits[w] = word & (word - 1); // bits below i in this word are already clear
                    int slot = _bucketHead[i];
                    _bucketHead[i] = None;
                    _curIdx = i + 1;
                    int[] next = _next;
                    while (slot != None)
                    {
                        ref Slot s = ref _slots[slot];
                        PushNear(s.Time, s.Order, slot);
                        slot = next[slot];
                    }
                    return;
                }
            }
            _curIdx = _bucketSpan;
            SpreadFar();
        }
    }

    /// <summary>All buckets are used up: spread the far list over new buckets. The buckets cover the dense part of
    /// the far list's time span: the closer half of its events and whatever lies within 16 times their distance
    /// from the earliest. Outliers far in the future (a sampling tick, an end-of-run timer) stay in the far list for
    /// a later spread instead of stretching every bucket so wide that all the other events (and all those scheduled
    /// until the first bucket is used up) land in one and the near heap has to sort them all.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SpreadFar()
    {
        if (_farCount == 0) throw new InvalidOperationException("scheduler invariant broken: events pending but none found");
        Span<FarEntry> far = _far.AsSpan(0, _farCount);
        long farMin = _farMin;

        // Log2 histogram of the distances from the earliest far event: bin 0 holds distance 0, bin b >= 1
        // distances in [2^(b-1), 2^b). Take the smallest b whose bins 0..b hold at least half of the events,
        // and cover distances below 2^(b+4). (A fixed fraction such as 7/8 fails when the far list is short:
        // with 10 events, two outliers would already set the span.)
        Span<int> bins = stackalloc int[65];
        bins.Clear();
        foreach (ref readonly FarEntry f in far)
        {
            ulong d = (ulong)(f.Time - farMin);
            bins[d == 0 ? 0 : BitOperations.Log2(d) + 1]++;
        }
        int need = (_farCount + 1) >> 1;
        int b = 0, covered = bins[0];
        while (covered < need) covered += bins[++b];
        int top = Math.Min(b + 4, 64);
        while (b < top) covered += bins[++b];
        ulong maxDistance = top >= 64 ? ulong.MaxValue : (1UL << top) - 1;
        ulong span = Math.Min(maxDistance, (ulong)(_farMax - farMin));
        long last = (long)((ulong)farMin + span);

        int target = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp((long)covered * BucketsPerEvent, 1, MaxBuckets));
        int shift = 0;
        while ((span >> shift) >= (ulong)target) shift++;
        long baseQ = farMin >> shift;
        int bucketSpan = (int)((last >> shift) - baseQ + 1); // at most target + 1
        if (_bucketHead.Length < bucketSpan)
        {
            int length = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(bucketSpan, 64));
            _bucketHead = new int[length];
            _bucketBits = new ulong[length >> 6];
        }
        int[] heads = _bucketHead;
        ulong[] bits = _bucketBits;
        Array.Fill(heads, None, 0, bucketSpan);
        Array.Clear(bits, 0, (bucketSpan + 63) >> 6);

        _shift = shift;
        _baseQ = baseQ;
        _curIdx = 0;
        _bucketSpan = bucketSpan;

        // Events within the buckets go to them; the rest are compacted at the front of the far list.
        int[] next = _next;
        int kept = 0;
        long keptMin = long.MaxValue, keptMax = long.MinValue;
        for (int i = 0; i < far.Length; i++)
        {
            FarEntry f = far[i];
            long rel = (f.Time >> shift) - baseQ;
            if (rel < bucketSpan)
            {
                ref int head = ref heads[(int)rel];
                next[f.Slot] = head;
                head = f.Slot;
                bits[(int)rel >> 6] |= 1UL << (int)rel;
            }
            else
            {
                far[kept++] = f;
                if (f.Time < keptMin) keptMin = f.Time;
                if (f.Time > keptMax) keptMax = f.Time;
            }
        }
        _farCount = kept;
        _farMin = keptMin;
        _farMax = keptMax;
    }

    // ---- near heap ----

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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PushNear(long time, ulong order, int slot)
    {
        if (Root + _nearCount == _keys.Length) GrowNear();
        SiftUp(Root + _nearCount++, time, order, slot);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RemoveTop()
    {
        int n = --_nearCount;
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

    private void GrowNear()
    {
        int capacity = checked((_keys.Length - Root) * 2);
        Array.Resize(ref _keys, capacity + Root);
        Array.Resize(ref _slotOf, capacity + Root);
    }

    private void GrowSlots()
    {
        int old = _slots.Length;
        int capacity = checked(old * 2);
        Array.Resize(ref _slots, capacity);
        Array.Resize(ref _next, capacity);
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

    private struct Slot
    {
        public long Time;
        public ulong Order;
        public IEventHandler? Handler;
        public object? Payload;
        public long Arg;
        public int Kind;
    }

    private readonly struct FarEntry(long time, int slot)
    {
        public readonly long Time = time;
        public readonly int Slot = slot;
    }
}

public enum RunOutcome
{
    Drained,
    TimeLimit,
    Stopped,
    Predicate,
}
