using CsCheck;
using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Walk;

namespace IommuSim.Hardware.Tests;

/// <summary>
/// The walker-slot bookkeeping both walkers share (<see cref="WalkerSlots{TWalk, TRequest, TOps}"/>), driven with
/// a toy request type: the walker limit, FIFO order of waiting misses, coalescing into a walk of the same page,
/// every miss handed back exactly once, the counters; and a read held back by a walk-cache lookup.
/// </summary>
public sealed class WalkerSlotsTests
{
    private sealed class Req(int id, ulong page, bool filledMeanwhile)
    {
        public readonly int Id = id;
        public readonly ulong Page = page;
        public readonly bool FilledMeanwhile = filledMeanwhile;
        public Req? Next;
        public int Done;
        public int WalkReads;
        public int WalkId = -1;
    }

    private sealed class Walk : TableWalk<Req>
    {
        public ulong Page;
        public int Id;
    }

    private sealed class Rig : IEventHandler
    {
        public readonly List<Walk> Begun = [];
        public readonly List<int> LeftQueue = [];
        public readonly List<(int Kind, Walk W)> Events = [];
        public readonly Scheduler Sched = new();
        public readonly PhysicalMemory Mem = new();
        public readonly WalkerSlots<Walk, Req, Ops> Slots;
        public int NextWalkId;

        public Rig(int walkers, bool coalesce)
        {
            Slots = new WalkerSlots<Walk, Req, Ops>(walkers, coalesce, Mem, new MemoryTimingModel(new MemoryOptions(), new SimRandom(1)),
                Sched, new ClockDomain("iommu", 1000), this, "");
            Slots.Ops = new Ops(this);
        }

        public void OnEvent(int kind, long arg, object? payload) => Events.Add((kind, (Walk)payload!));
    }

    private readonly struct Ops(Rig rig) : IWalkerOps<Walk, Req>
    {
        public Req? GetNext(Req r) => r.Next;
        public void SetNext(Req r, Req? next) => r.Next = next;
        public bool IsWrite(Req r) => false;
        public bool Covers(Walk w, Req r) => w.Page == r.Page;
        public void Init(Walk w, Req first) { w.Page = first.Page; w.Id = rig.NextWalkId++; }
        public void Begin(Walk w) => rig.Begun.Add(w);
        public void OnStarted(HardwareObserver o, int slot, Req r) { }
        public void OnJoined(HardwareObserver o, int slot, Req r) { }
        public void Deliver(Walk w, Req r, Access rights, int reads, bool first)
        {
            r.WalkId = w.Id;
            if (first) r.WalkReads = reads;
        }
        public void Done(Req r) => r.Done++;
        public bool TryCompleteFromTlb(Req r)
        {
            rig.LeftQueue.Add(r.Id);
            if (r.FilledMeanwhile) r.Done++;
            return r.FilledMeanwhile;
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Any_order_of_misses_and_finished_walks_keeps_the_walker_limit_and_FIFO_and_hands_each_miss_back_once(bool coalesce)
    {
        // Each op: < 60 a miss for one of 6 pages (every 7th filled in the TLB meanwhile), else finish an active walk.
        Gen.Int[0, 99].Array[1, 80].Select(Gen.Int[1, 4]).Sample((ops, walkers) =>
        {
            var rig = new Rig(walkers, coalesce);
            var all = new List<Req>();
            var queuedOrder = new List<int>();
            var active = new List<Walk>();
            long expectQueued = 0, expectCoalesced = 0;
            foreach (int op in ops)
            {
                if (op < 60)
                {
                    var r = new Req(all.Count, (ulong)(op % 6), op % 7 == 0);
                    all.Add(r);
                    bool joins = coalesce && active.Exists(w => w.Page == r.Page);
                    if (joins) expectCoalesced++;
                    else if (active.Count == walkers) { expectQueued++; queuedOrder.Add(r.Id); }
                    rig.Slots.Submit(r);
                }
                else if (active.Count > 0) rig.Slots.Finish(active[op % active.Count], Access.ReadWrite, op % 5);
                active = ActiveWalks(rig);
                if (active.Count > walkers || rig.Slots.ActiveCount != active.Count) return false;
                if (coalesce && active.Select(w => w.Page).Distinct().Count() != active.Count) return false;
            }
            // Drain: walks finish until no miss waits.
            while (ActiveWalks(rig) is { Count: > 0 } left) rig.Slots.Finish(left[0], Access.ReadWrite, 1);
            return all.TrueForAll(r => r.Done == 1)
                && rig.LeftQueue.SequenceEqual(queuedOrder)
                && rig.Slots.Queued == expectQueued
                && rig.Slots.Coalesced >= expectCoalesced
                && rig.Slots.Count + rig.Slots.Coalesced + all.Count(r => r.FilledMeanwhile && queuedOrder.Contains(r.Id)) == all.Count
                && rig.Slots.Count == rig.Begun.Count
                && rig.Slots.WalkReads.Count == rig.Slots.Count;
        });
    }

    private static List<Walk> ActiveWalks(WalkerSlotsTests.Rig rig)
    {
        // A walk is active from Begin until every waiter is handed back (its Head is cleared).
        var seen = new HashSet<Walk>();
        return rig.Begun.Where(w => w.Head is not null && seen.Add(w)).ToList();
    }

    [Fact]
    public void Misses_beyond_the_walkers_wait_and_start_in_arrival_order_and_a_miss_joins_a_walk_of_its_page()
    {
        var rig = new Rig(walkers: 1, coalesce: true);
        var a = new Req(0, 1, false); var b = new Req(1, 2, false); var c = new Req(2, 1, false); var d = new Req(3, 2, false);
        rig.Slots.Submit(a);
        rig.Slots.Submit(b);   // walker busy: waits
        rig.Slots.Submit(c);   // same page as the walk in flight: joins it
        rig.Slots.Submit(d);   // waits behind b
        Assert.Equal((1L, 1L, 2L), (rig.Slots.Count, rig.Slots.Coalesced, rig.Slots.Queued));
        rig.Slots.Finish(rig.Begun[0], Access.ReadWrite, reads: 4);
        // a and c come back from walk 0 (only the first waiter carries the walk's reads); b, first in line, starts walk 1.
        // d stays in line while no walker is free (it does not join walk 1 of its page: only a free walker takes a queued miss).
        Assert.Equal((1, 1, 0, 0), (a.Done, c.Done, b.Done, d.Done));
        Assert.Equal((4, 0), (a.WalkReads, c.WalkReads));
        Assert.Equal(2, rig.Begun.Count);
        Assert.Same(b, rig.Begun[1].Head);
        Assert.Same(b, rig.Begun[1].Tail);
        rig.Slots.Finish(rig.Begun[1], Access.ReadWrite, reads: 2);
        Assert.Equal((1, 0), (b.Done, d.Done));
        Assert.Equal(3, rig.Begun.Count);
        Assert.Same(d, rig.Begun[2].Head);
        Assert.Equal((3L, 1L, 2L), (rig.Slots.Count, rig.Slots.Coalesced, rig.Slots.Queued));
    }

    [Fact]
    public void A_read_after_a_walk_cache_lookup_goes_to_memory_when_the_lookup_is_over()
    {
        var rig = new Rig(walkers: 1, coalesce: false);
        rig.Mem.WriteU64(0x1000, 0xABCD);
        rig.Slots.Submit(new Req(0, 1, false));
        var w = rig.Begun[0];
        rig.Slots.IssueRead(w, 0x1000, WalkEventKinds.Stage2Read, extraCycles: 3);
        Assert.Equal(0xABCDUL, w.PendingValue);   // functional value read at once
        Assert.True(rig.Sched.Step());
        Assert.Equal(3000L, rig.Sched.Now);        // 3 cycles at 1 GHz
        Assert.Equal((WalkEventKinds.Issue, w), rig.Events[0]);
        rig.Slots.IssuePending(w);
        Assert.True(rig.Sched.Step());
        Assert.Equal((WalkEventKinds.Stage2Read, w), rig.Events[1]);
        Assert.True(rig.Sched.Now > 3000L);         // after the memory latency
    }
}
