using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Time;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.PageTables;

namespace IommuSim.Hardware.Tests.Smmu;

/// <summary>
/// Configuration-cache misses (SMMUv3 §3.3: stream table → STE, then CD table → CD): each dependent
/// read is issued to memory when the one before it has returned, so it takes DRAM bandwidth when it
/// is really issued; concurrent misses on one (StreamID, SubstreamID) share one fetch, and nobody
/// uses a configuration before its last read has returned. The VT-d counterpart is ConfigFetchTests.
/// </summary>
public class SmmuConfigFetchTests
{
    private const uint Sid = 5;
    private const ulong Iova = 0x4000_0000, Pa = 0x8000_0000;

    /// <summary>An unrelated 64-byte DRAM read issued at a chosen time (a probe of the memory's bandwidth server).</summary>
    private sealed class Probe(SmmuRig rig) : IEventHandler
    {
        public long IssuePs = -1, DonePs = -1;
        public void OnEvent(int kind, long arg, object? payload)
        {
            IssuePs = rig.Scheduler.Now;
            DonePs = rig.Timing.Access(IssuePs, 64, write: false);
        }
    }

    private static SmmuRig Rig(int? split = null)
    {
        var rig = new SmmuRig(split: split);
        rig.SetupStage1(Sid, Granule.Size4K, 48, Iova, Pa, 0x10_0000);
        return rig;
    }

    [Fact]
    public void A_fetch_does_not_reserve_memory_for_its_later_reads()
    {
        // Two-level stream table: L1 descriptor, STE, CD: three dependent reads of ~90 ns each.
        var rig = Rig(split: 6);
        long lookupDone = rig.Smmu.Clock.EdgeAfter(0, rig.Smmu.Options.ConfigCache.LookupCycles);
        var probe = new Probe(rig);
        // Just after the fetch's first read went out: only that read may hold the DRAM server.
        rig.Scheduler.ScheduleAt(lookupDone + 1, probe, 0);
        var t = new SmmuTransaction { Sid = Sid, Address = Iova, Access = Access.Read };
        Assert.True(rig.Smmu.TryAccept(t));
        rig.Scheduler.Run();
        Assert.False(t.Faulted);
        Assert.Equal(3, rig.Smmu.ConfigFetchReads);
        long bare = SimTime.FromNs(rig.Timing.Options.LatencyNs);
        // Alone the probe takes the access latency plus at most two 64-byte transfers (its own and the first read's).
        Assert.InRange(probe.DonePs - probe.IssuePs, bare, bare + SimTime.FromNs(2.0));
    }

    [Fact]
    public void Each_read_is_issued_when_the_one_before_it_has_returned()
    {
        var rig = Rig(split: 6);
        var reads = new List<(long Issue, long Done)>();
        rig.Smmu.SetObserver(new ReadLog(rig, reads));
        rig.Translate(Sid, Iova);
        Assert.Equal(3, reads.Count);
        for (int i = 1; i < reads.Count; i++) Assert.Equal(reads[i - 1].Done, reads[i].Issue);
    }

    [Fact]
    public void A_walk_read_after_a_walk_cache_lookup_goes_to_memory_when_the_lookup_is_over()
    {
        // Walk caches on: the first read of a walk (and of each nested stage-2 sub-walk) waits walkCache.lookupCycles.
        var rig = new SmmuRig(walkCaches: true);
        rig.SetupNested(Sid, Granule.Size4K, 48, Granule.Size4K, 48, null, Iova, 0x20_0000, 0x10_0000);
        var reads = new List<(long Now, long Issue)>();
        rig.Smmu.SetObserver(new WalkReadLog(rig, reads));
        Assert.False(rig.Translate(Sid, Iova).Faulted);
        Assert.True(reads.Count > 8); // a cold 4 × 4 nested walk, stage-2 walk caches filled as it goes
        // Reported (and given to the memory model) when issued, never for a time still to come.
        Assert.All(reads, r => Assert.Equal(r.Now, r.Issue));
    }

    private sealed class WalkReadLog(SmmuRig rig, List<(long, long)> reads) : Observers.HardwareObserver
    {
        public override void OnWalkRead(int walker, TableStage stage, int level, ulong entryAddress, long issuePs, long donePs)
            => reads.Add((rig.Scheduler.Now, issuePs));
    }

    private sealed class ReadLog(SmmuRig rig, List<(long, long)> reads) : Observers.HardwareObserver
    {
        public override void OnSmmuConfigRead(SmmuTransaction t, SmmuConfigRead read, ulong address, long donePs)
            => reads.Add((rig.Scheduler.Now, donePs));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(6)]
    public void Concurrent_misses_on_one_stream_share_its_fetch_and_wait_for_it(int transactions)
    {
        var rig = Rig();
        // The TLB holds every page; only the configuration is cold (CFGI_STE), so the fetch is all there is to wait for.
        for (int i = 0; i < transactions; i++) Assert.False(rig.Translate(Sid, Iova + (ulong)i * 0x1000).Faulted);
        rig.Commands(new Hardware.Smmu.Queues.SmmuCommand { Opcode = Hardware.Smmu.Queues.SmmuOpcode.CfgiSte, Sid = Sid });
        long before = rig.Smmu.ConfigFetchReads;
        var all = new List<SmmuTransaction>();
        for (int i = 0; i < transactions; i++)
        {
            var t = new SmmuTransaction { Sid = Sid, Address = Iova + (ulong)i * 0x1000, Access = Access.Read };
            Assert.True(rig.Smmu.TryAccept(t));
            all.Add(t);
        }
        var done = new Done(rig);
        rig.Smmu.Client = done;
        rig.Scheduler.Run();
        Assert.Equal(transactions, done.LatencyPs.Count);
        Assert.All(all, t => Assert.False(t.Faulted));
        Assert.Equal(2, rig.Smmu.ConfigFetchReads - before); // linear stream table: STE, CD
        // Nobody translated before the fetch's two dependent reads (≥ 2 × 90 ns) were back.
        long twoReads = 2 * SimTime.FromNs(rig.Timing.Options.LatencyNs);
        Assert.All(done.LatencyPs, l => Assert.True(l >= twoReads, $"translated after {l} ps"));
    }

    private sealed class Done(SmmuRig rig) : ISmmuClient
    {
        public readonly List<long> LatencyPs = [];
        public void OnTranslated(SmmuTransaction t) => LatencyPs.Add(rig.Scheduler.Now - t.ArrivalPs);
        public void OnSlotFree() { }
    }

    [Fact]
    public void Waiters_on_a_stream_beyond_the_table_all_fault_with_c_bad_streamid()
    {
        var rig = new SmmuRig(log2StreamIds: 4);
        var done = new Done(rig);
        rig.Smmu.Client = done;
        var all = new List<SmmuTransaction>();
        for (int i = 0; i < 3; i++)
        {
            var t = new SmmuTransaction { Sid = 40, Address = Iova, Access = Access.Read };
            Assert.True(rig.Smmu.TryAccept(t));
            all.Add(t);
        }
        rig.Scheduler.Run();
        Assert.All(all, t => Assert.Equal(SmmuEventType.BadStreamId, t.Fault));
        Assert.Equal(0, rig.Smmu.ConfigFetchReads);
        Assert.Equal(3, rig.Smmu.FaultsOf(SmmuEventType.BadStreamId));
    }
}
