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
/// <para>Structure: a ladder queue (Tang, Goh and Thng, ACM TOMACS 15(3), 2005) whose bottom is a small 4-ary heap.</para>
/// <list type="bullet">
/// <item>The <em>near</em> heap holds (time, order) keys of the earliest events and where their records are. It is a
/// 4-ary heap stored from index 3 so that the four children of a node are one 64-byte group of 16-byte keys starting
/// at a multiple of four; sift-down moves the hole to a leaf with a branch-free choice of the smallest child. It holds
/// one bucket's worth of events (rarely more than a few), so it stays in the L1 cache.</item>
/// <item><em>Rung 0</em> covers [baseQ + curIdx, baseQ + span) in units of 2^shift ps. While at most
/// <see cref="LinkedTopLimit"/> events are pending it is <em>linked</em>: about four buckets per event, each a list
/// of records (time, order, handler, kind, arg, payload, next) in recycled <em>slots</em>, which all stay cached.
/// With more, it is <em>chunked</em>: a few thousand buckets of about <see cref="EventsPerTopBucket"/> records each,
/// stored whole in fixed-size chunks; a scheduled event is appended to the tail of its bucket, and a bucket is read
/// back in order when its turn comes.</item>
/// <item><em>Deeper rungs</em> split the one bucket of the rung above whose turn came while it held more than
/// <see cref="SplitThreshold"/> events, over buckets of about <see cref="EventsPerSplitBucket"/>. They are linked:
/// splitting relinks records where they are (a split chunked bucket's chunks are kept until rung 1 is used up), and
/// an event scheduled into a deeper rung gets a slot.</item>
/// <item>When the near heap runs empty, the next non-empty bucket of the deepest rung (found through a bitmap) is
/// split or loaded into the heap; used-up rungs are dropped. Events scheduled into a range already loaded get a slot
/// and go straight into the near heap.</item>
/// <item>Events beyond rung 0 are appended to the unsorted <em>far</em> array. When rung 0 runs out, the far array is
/// spread over a fresh rung 0 (bucket widths a power of two) covering the part of its time span near its earliest
/// events (the closer half of them and whatever lies within 16 times their distance); the outliers beyond stay in
/// the far array.</item>
/// </list>
/// <para>Every near event is earlier than every event in a rung, a deeper rung's events are earlier than the
/// remaining events of the rungs above it, rung 0's are earlier than every far event, and events with equal times
/// always share a structure, so the pop order is exactly that of a single heap ordered by (time, priority,
/// sequence). A record is written once (and copied once more if it passes through the far array); splits only
/// relink. An outlier may be passed over by a few spreads, but every spread moves at least half of the far array into
/// rung 0, so scheduling and running an event costs O(1) amortised plus a heap operation on the small near heap.
/// Because outliers do not set the bucket width, a handful of events far in the future (a sampling tick) does not
/// push all the others into one bucket.</para>
/// <para>Why two kinds of rung 0: with 10^6 pending events the records (48 MB) are far larger than the caches, and
/// linked buckets cost two or three cache misses per event (the bucket head on insert, each record and its link on
/// load). Appending to a few thousand chunked buckets touches a few hundred kilobytes of tails, and reading a bucket
/// back is streaming access that the hardware prefetcher hides; the split that follows works on records just read.
/// While everything fits in the caches, the linked calendar does less work per event.</para>
/// </remarks>
public sealed class Scheduler
{
    /// <summary>Priorities run lowest first among events at the same time.</summary>
    public const byte DefaultPriority = 128;

    /// <summary>Up to this many pending events (about 1.5 MiB of records, what an L2 cache holds) a spread makes rung 0
    /// linked, with <see cref="BucketsPerEventLinked"/> buckets per event; beyond it, chunked.</summary>
    public const int LinkedTopLimit = 1 << 15;

    /// <summary>Buckets per event of a linked rung 0, so that a bucket rarely holds more than one or two events.</summary>
    public const int BucketsPerEventLinked = 4;

    /// <summary>Average events per bucket of a chunked rung 0.</summary>
    public const int EventsPerTopBucket = 256;

    /// <summary>A bucket with more events than this is split into a deeper rung instead of being loaded into the heap.</summary>
    public const int SplitThreshold = 16;

    /// <summary>Average events per bucket of a rung made by a split.</summary>
    public const int EventsPerSplitBucket = 2;

    private const int SeqBits = 56;
    private const ulong SeqMask = (1UL << SeqBits) - 1;
    private const int Root = 3;               // heap root index; children of i are 4i-8 .. 4i-5
    private const int None = -1;
    private const int MaxBuckets = 1 << 22;
    private const int MaxRungs = 8;
    private const int ChunkShift = ChunkStore.ChunkShift;
    private const int ChunkSize = ChunkStore.ChunkSize;

    private int _count;                       // all pending events

    // Near heap. A reference r >= 0 is a record in _records, ~r a slot.
    private Key[] _keys;
    private int[] _refOf;
    private int _nearCount;

    // Records of events in deeper rungs or scheduled straight into the near heap; recycled through a free stack.
    private EventRecord[] _slots;
    private int[] _freeSlots;
    private int _freeCount;

    private readonly ChunkStore _records; // the buckets of a chunked rung 0
    private ChunkList _loaded = new() { Head = None }; // record chunks of the rung-0 bucket in the near heap

    // Rungs 0 .. _rungCount - 1; the arrays of deeper rungs are kept for reuse.
    private readonly SchedulerRung[] _rungs = new SchedulerRung[MaxRungs];
    private readonly SchedulerRung _top;      // _rungs[0]; empty (span 0) until the first spread and after Clear
    private int _rungCount;

    // Far list: contiguous, so spreading it reads sequentially
    private EventRecord[] _far;
    private int _farCount;
    private long _farMin = long.MaxValue;
    private long _farMax = long.MinValue;

    private ulong _seq;
    private bool _stopRequested;

    public Scheduler(int initialCapacity = 1024)
    {
        // Up to LinkedTopLimit events the records live in slots, beyond it mostly in chunks.
        int capacity = Math.Max(64, initialCapacity);
        int slots = Math.Min(capacity, LinkedTopLimit);
        int chunks = capacity > LinkedTopLimit ? ChunkStore.ChunksFor(capacity) * 2 : 4;
        _records = new ChunkStore(chunks);
        _slots = new EventRecord[slots];
        _freeSlots = new int[slots];
        PushFreeSlots(0, slots);
        _far = new EventRecord[Math.Min(capacity, 1024)];
        _keys = new Key[256 + Root];
        _refOf = new int[_keys.Length];
        for (int r = 0; r < MaxRungs; r++) _rungs[r] = new SchedulerRung(256);
        _top = _rungs[0];
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
        _records.Clear();
        Array.Clear(_slots);
        Array.Clear(_far);
        _count = 0;
        _nearCount = 0;
        _freeCount = 0;
        PushFreeSlots(0, _slots.Length);
        _loaded = new ChunkList { Head = None };
        foreach (SchedulerRung rung in _rungs) rung.Reset();
        _rungCount = 0;
        _farCount = 0;
        _farMin = long.MaxValue;
        _farMax = long.MinValue;
    }

    /// <summary>Pops the near heap's top (whose time the caller read) and calls its handler.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Execute(long time)
    {
        int r = _refOf[Root];
        if (_nearCount == 1) _nearCount = 0; // the usual case with a linked rung 0: nothing to sift
        else RemoveTop();
        _count--;
        ref EventRecord e = ref Record(r);
        IEventHandler handler = e.Handler!;
        object? payload = e.Payload;
        long arg = e.Arg;
        int kind = e.Kind;
        e.Handler = null; // drop references so executed payloads can be collected
        e.Payload = null;
        if (r < 0) _freeSlots[_freeCount++] = ~r;
        Now = time;
        Executed++;
        handler.OnEvent(kind, arg, payload);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Insert(long time, ulong order, IEventHandler handler, int kind, long arg, object? payload)
    {
        _count++;
        ref EventRecord e = ref Place(time, order);
        e.Time = time;
        e.Order = order;
        e.Handler = handler;
        e.Payload = payload;
        e.Arg = arg;
        e.Kind = kind;
    }

    /// <summary>Where the record of an event at <paramref name="time"/> goes: the bucket of the first rung (from the
    /// top) whose unloaded buckets cover it; the far list when it lies beyond rung 0 (or before the first spread,
    /// when rung 0 is empty); else (a range already loaded) a slot in the near heap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref EventRecord Place(long time, ulong order)
    {
        SchedulerRung top = _top; // most events land in rung 0: no loop for them
        long rel = (time >> top.Shift) - top.BaseQ; // both non-negative: no overflow
        if (rel >= top.Span) return ref AppendFar(time);
        if (rel >= top.CurIdx) return ref top.Linked ? ref LinkSlot(top, (int)rel) : ref Append(_records, top, (int)rel);
        return ref PlaceBelowTop(time, order);
    }

    private ref EventRecord PlaceBelowTop(long time, ulong order)
    {
        for (int r = 1; r < _rungCount; r++)
        {
            SchedulerRung rung = _rungs[r];
            long rel = (time >> rung.Shift) - rung.BaseQ;
            if (rel >= rung.Span) rel = rung.Span - 1; // a deeper rung ends with its parent bucket: its last bucket takes everything up to there
            if (rel >= rung.CurIdx) return ref LinkSlot(rung, (int)rel);
        }
        int slot = TakeSlot();
        PushNear(time, order, ~slot);
        return ref _slots[slot];
    }

    /// <summary>A slot for a new event, put at the front of bucket <paramref name="index"/> of a linked rung.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref EventRecord LinkSlot(SchedulerRung rung, int index)
    {
        int slot = TakeSlot();
        ref EventRecord e = ref _slots[slot];
        ref int head = ref rung.Heads[index];
        e.Next = head;
        head = ~slot;
        rung.Bits[index >> 6] |= 1UL << index;
        return ref e;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int TakeSlot()
    {
        if (_freeCount == 0) GrowSlots();
        return _freeSlots[--_freeCount];
    }

    private ref EventRecord AppendFar(long time)
    {
        if (_farCount == _far.Length) Array.Resize(ref _far, _far.Length * 2);
        if (time < _farMin) _farMin = time;
        if (time > _farMax) _farMax = time;
        return ref _far[_farCount++];
    }

    /// <summary>The record for the next event of bucket <paramref name="index"/>, at the end of its last chunk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref EventRecord Append(ChunkStore store, SchedulerRung rung, int index)
    {
        ref ChunkList bucket = ref rung.Buckets[index];
        int n = bucket.Count++;
        int fill = n & ChunkStore.ChunkMask;
        if (fill == 0) NewTailChunk(store, rung, ref bucket, index, n);
        return ref store.Items[(bucket.Tail << ChunkStore.ChunkShift) + fill];
    }

    private static void NewTailChunk(ChunkStore store, SchedulerRung rung, ref ChunkList bucket, int index, int countBefore)
    {
        int chunk = store.Take();
        if (countBefore == 0)
        {
            bucket.Head = chunk;
            rung.Bits[index >> 6] |= 1UL << index;
        }
        else
        {
            store.Next[bucket.Tail] = chunk;
        }
        bucket.Tail = chunk;
    }

    /// <summary>Near heap is empty and events are pending: load the next bucket of the deepest rung into the heap,
    /// splitting it when it is large, dropping used-up rungs, and spreading the far list into rung 0 when all rungs
    /// are used up.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void FillNear()
    {
        // Every event of the bucket loaded last has run: its record chunks can be reused.
        if (_loaded.Head != None)
        {
            _records.Recycle(_loaded);
            _loaded.Head = None;
        }
        while (true)
        {
            if (_rungCount == 0)
            {
                SpreadFar();
                continue;
            }
            SchedulerRung rung = _rungs[_rungCount - 1];
            int i = rung.TakeNextNonEmpty();
            if (i < 0)
            {
                // Used up, and every event it held has run.
                if (rung.OwnedRecords.Head != None) _records.Recycle(rung.OwnedRecords);
                _rungCount--;
                continue;
            }
            bool splittable = rung.Shift > 0 && _rungCount < MaxRungs;
            if (rung.Linked)
            {
                int head = rung.Heads[i];
                rung.Heads[i] = SchedulerRung.End;
                if (LoadLinked(head, splittable ? SplitThreshold : int.MaxValue)) return;
                // Too many to load: split instead (loading left the list as it was).
                _nearCount = 0;
                if (SplitLinked(head)) continue;
                LoadLinked(head, int.MaxValue);
                return;
            }
            ref ChunkList bucket = ref rung.Buckets[i];
            if (splittable && bucket.Count > SplitThreshold && SplitChunked(ref bucket))
            {
                _rungs[_rungCount - 1].OwnedRecords = bucket; // its records stay where they are
                bucket.Count = 0;
                continue;
            }
            LoadChunked(bucket);
            _loaded = bucket;
            bucket.Count = 0;
            return;
        }
    }

    /// <summary>Pushes the keys of every record of a chunked bucket onto the (empty) near heap; the records stay.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void LoadChunked(in ChunkList bucket)
    {
        int n = bucket.Count;
        if (Root + n > _keys.Length) GrowNear(n);
        EventRecord[] records = _records.Items;
        int[] next = _records.Next;
        for (int chunk = bucket.Head; ; chunk = next[chunk])
        {
            int first = chunk << ChunkShift;
            int m = Math.Min(n, ChunkSize);
            for (int j = first; j < first + m; j++)
                SiftUp(Root + _nearCount++, records[j].Time, records[j].Order, j);
            n -= m;
            if (n == 0) return;
        }
    }

    /// <summary>Pushes the keys of every record of a linked bucket onto the (empty) near heap; false, stopping,
    /// when the bucket holds more than <paramref name="limit"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool LoadLinked(int head, int limit)
    {
        // The first record becomes the root (the heap is empty); often it is the only one.
        ref EventRecord e = ref Record(head);
        _keys[Root] = new Key { Time = e.Time, Order = e.Order };
        _refOf[Root] = head;
        _nearCount = 1;
        for (int r = e.Next; r != SchedulerRung.End; r = e.Next)
        {
            if (_nearCount == limit) return false;
            e = ref Record(r);
            PushNear(e.Time, e.Order, r);
        }
        return true;
    }

    /// <summary>Splits a chunked rung-0 bucket into a new linked rung 1; the records stay where they are (rung 1
    /// owns their chunks). False, doing nothing, when all its events share one time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool SplitChunked(ref ChunkList bucket)
    {
        EventRecord[] records = _records.Items;
        int[] next = _records.Next;
        int n = bucket.Count;
        long min = long.MaxValue, max = long.MinValue;
        for (int chunk = bucket.Head, left = n; left > 0; chunk = next[chunk], left -= ChunkSize)
        {
            int first = chunk << ChunkShift;
            for (int j = first, end = first + Math.Min(left, ChunkSize); j < end; j++)
            {
                long t = records[j].Time;
                if (t < min) min = t;
                if (t > max) max = t;
            }
        }
        if (min == max) return false;
        SchedulerRung rung = StartSplit(min, max, n);
        for (int chunk = bucket.Head, left = n; left > 0; chunk = next[chunk], left -= ChunkSize)
        {
            int first = chunk << ChunkShift;
            for (int j = first, end = first + Math.Min(left, ChunkSize); j < end; j++)
                Link(rung, (int)((records[j].Time >> rung.Shift) - rung.BaseQ), j);
        }
        return true;
    }

    /// <summary>Splits a linked bucket into a new rung below it, relinking its records. False, doing nothing,
    /// when all its events share one time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool SplitLinked(int head)
    {
        int n = 0;
        long min = long.MaxValue, max = long.MinValue;
        for (int r = head; r != SchedulerRung.End; r = Record(r).Next)
        {
            long t = Record(r).Time;
            if (t < min) min = t;
            if (t > max) max = t;
            n++;
        }
        if (min == max) return false;
        SchedulerRung rung = StartSplit(min, max, n);
        for (int r = head; r != SchedulerRung.End;)
        {
            int following = Record(r).Next;
            Link(rung, (int)((Record(r).Time >> rung.Shift) - rung.BaseQ), r);
            r = following;
        }
        return true;
    }

    /// <summary>A new deepest (linked) rung over [min, max] for <paramref name="n"/> events: buckets of 2^shift ps, at
    /// least two of them (range &gt;= 2^shift when shift &gt; 0), with min in the first and max in the last. Later
    /// inserts up to the parent bucket's end go to the last one.</summary>
    private SchedulerRung StartSplit(long min, long max, int n)
    {
        int target = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(2, n / EventsPerSplitBucket));
        ulong range = (ulong)(max - min);
        int shift = 0;
        while ((range >> shift) >= (ulong)target) shift++;
        SchedulerRung rung = _rungs[_rungCount++];
        rung.Start(min >> shift, shift, (int)((max >> shift) - (min >> shift) + 1), linked: true);
        return rung;
    }

    /// <summary>Puts the record <paramref name="r"/> at the front of bucket <paramref name="index"/> of a linked rung.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Link(SchedulerRung rung, int index, int r)
    {
        ref int head = ref rung.Heads[index];
        Record(r).Next = head;
        head = r;
        rung.Bits[index >> 6] |= 1UL << index;
    }

    /// <summary>The record a reference names: &gt;= 0 an index into the chunk store, ~slot otherwise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref EventRecord Record(int r) => ref r >= 0 ? ref _records.Items[r] : ref _slots[~r];

    /// <summary>All rungs are used up: spread the far list over a new rung 0. Its buckets cover the dense part of
    /// the far list's time span: the closer half of its events and whatever lies within 16 times their distance
    /// from the earliest. Outliers far in the future (a sampling tick, an end-of-run timer) stay in the far list for
    /// a later spread instead of stretching every bucket so wide that all the other events (and all those scheduled
    /// until the first bucket is used up) land in one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SpreadFar()
    {
        if (_farCount == 0) throw new InvalidOperationException("scheduler invariant broken: events pending but none found");
        Span<EventRecord> far = _far.AsSpan(0, _farCount);
        long farMin = _farMin;

        // Log2 histogram of the distances from the earliest far event: bin 0 holds distance 0, bin b >= 1
        // distances in [2^(b-1), 2^b). Take the smallest b whose bins 0..b hold at least half of the events,
        // and cover distances below 2^(b+4). (A fixed fraction such as 7/8 fails when the far list is short:
        // with 10 events, two outliers would already set the span.)
        Span<int> bins = stackalloc int[65];
        bins.Clear();
        foreach (ref readonly EventRecord f in far)
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

        // While everything pending fits in the caches, rung 0 is a calendar of short linked lists, about four
        // buckets per event, so that loading a bucket rarely puts more than one or two events in the heap. Beyond
        // that, it is a few thousand chunked buckets, which inserts append to and loads read in order.
        bool linked = _count <= LinkedTopLimit;
        long buckets = linked ? (long)covered * BucketsPerEventLinked : covered / EventsPerTopBucket;
        int target = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Clamp(buckets, 1, MaxBuckets));
        int shift = 0;
        while ((span >> shift) >= (ulong)target) shift++;
        long baseQ = farMin >> shift;
        SchedulerRung rung = _rungs[0];
        rung.Start(baseQ, shift, (int)((last >> shift) - baseQ + 1), linked); // at most target + 1 buckets
        _rungCount = 1;

        // Events within the rung go to it; the rest are compacted at the front of the far list.
        int kept = 0;
        long keptMin = long.MaxValue, keptMax = long.MinValue;
        for (int i = 0; i < far.Length; i++)
        {
            ref EventRecord f = ref far[i];
            long rel = (f.Time >> shift) - baseQ;
            if (rel < rung.Span)
            {
                if (linked)
                {
                    int slot = TakeSlot();
                    _slots[slot] = f;
                    Link(rung, (int)rel, ~slot);
                }
                else
                {
                    Append(_records, rung, (int)rel) = f;
                }
            }
            else
            {
                if (f.Time < keptMin) keptMin = f.Time;
                if (f.Time > keptMax) keptMax = f.Time;
                far[kept++] = f;
            }
        }
        far[kept..].Clear(); // the records now live in the rung: drop the far list's references
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
    private void PushNear(long time, ulong order, int reference)
    {
        if (Root + _nearCount == _keys.Length) GrowNear();
        SiftUp(Root + _nearCount++, time, order, reference);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void SiftUp(nint hole, long time, ulong order, int reference)
    {
        ref Key keys = ref MemoryMarshal.GetArrayDataReference(_keys);
        ref int refs = ref MemoryMarshal.GetArrayDataReference(_refOf);
        while (hole > Root)
        {
            nint parent = (hole >> 2) + 2;
            ref Key pk = ref Unsafe.Add(ref keys, parent);
            if (!Less(time, order, pk)) break;
            Unsafe.Add(ref keys, hole) = pk;
            Unsafe.Add(ref refs, hole) = Unsafe.Add(ref refs, parent);
            hole = parent;
        }
        ref Key k = ref Unsafe.Add(ref keys, hole);
        k.Time = time;
        k.Order = order;
        Unsafe.Add(ref refs, hole) = reference;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RemoveTop()
    {
        int n = --_nearCount;
        if (n == 0) return;
        ref Key keys = ref MemoryMarshal.GetArrayDataReference(_keys);
        ref int refs = ref MemoryMarshal.GetArrayDataReference(_refOf);
        nint end = Root + n; // physical index of the last entry, which leaves the heap and is re-inserted
        Key last = Unsafe.Add(ref keys, end);
        int lastRef = Unsafe.Add(ref refs, end);

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
            Unsafe.Add(ref refs, hole) = Unsafe.Add(ref refs, best);
            hole = best;
            c = (hole << 2) - 8;
        }
        if (c < end)
        {
            nint best = c;
            for (nint j = c + 1; j < end; j++)
                best += (j - best) & -(nint)LessBit(ref Unsafe.Add(ref keys, j), ref Unsafe.Add(ref keys, best));
            Unsafe.Add(ref keys, hole) = Unsafe.Add(ref keys, best);
            Unsafe.Add(ref refs, hole) = Unsafe.Add(ref refs, best);
            hole = best;
        }

        // Then bring the former last entry up from that leaf to its place (usually zero or one level).
        SiftUp(hole, last.Time, last.Order, lastRef);
    }

    private void GrowNear(int atLeast = 0)
    {
        int capacity = (int)Math.Min(Array.MaxLength - Root, BitOperations.RoundUpToPowerOf2((uint)Math.Max(atLeast, (_keys.Length - Root) * 2)));
        Array.Resize(ref _keys, capacity + Root);
        Array.Resize(ref _refOf, capacity + Root);
    }

    private void GrowSlots()
    {
        int old = _slots.Length;
        int capacity = checked(old * 2);
        Array.Resize(ref _slots, capacity);
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
}

public enum RunOutcome
{
    Drained,
    TimeLimit,
    Stopped,
    Predicate,
}
