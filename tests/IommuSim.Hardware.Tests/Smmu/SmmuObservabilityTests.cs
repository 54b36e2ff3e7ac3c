using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;

namespace IommuSim.Hardware.Tests.Smmu;

/// <summary>
/// The SMMU's statistics observer (<see cref="SmmuStatistics"/>): every event type counted once per
/// transaction that raised it (recorded in the event queue or not), command queues counted per opcode
/// and class with CMD_SYNC waits, and the hooks allocating nothing per transaction.
/// </summary>
public class SmmuObservabilityTests
{
    private const ulong Iova = 0x4000_0000, Pa = 0x8000_0000;

    /// <summary>Sets up one stream so that a read (or write) of <see cref="Iova"/> raises <paramref name="type"/>; returns the access to make.</summary>
    private static (SmmuRig Rig, uint Sid, Access Access, uint? Ssid, bool Recorded) Raise(SmmuEventType type)
    {
        var rig = new SmmuRig(log2StreamIds: 4);
        switch (type)
        {
            case SmmuEventType.BadStreamId: return (rig, 200, Access.Read, null, true); // beyond LOG2SIZE
            case SmmuEventType.BadSte: return (rig, 3, Access.Read, null, true);        // V = 0
            case SmmuEventType.StreamDisabled:                                        // STE.Config = abort: terminated, not recorded
                rig.Smmu.StreamTable!.Install(2, new StreamTableEntry { Valid = true, Config = SteConfig.Abort });
                return (rig, 2, Access.Read, null, false);
            case SmmuEventType.BadSubstreamId:
                rig.SetupStage1(1, Granule.Size4K, 48, Iova, Pa, 0x1000, cdMax: 2);
                return (rig, 1, Access.Read, 4u, true);
            case SmmuEventType.Translation:
                rig.SetupStage1(1, Granule.Size4K, 48, Iova + 0x10_0000, Pa, 0x1000);
                return (rig, 1, Access.Read, null, true);
            case SmmuEventType.Permission:
                rig.SetupStage1(1, Granule.Size4K, 48, Iova, Pa, 0x1000, access: Access.Read);
                return (rig, 1, Access.Write, null, true);
            case SmmuEventType.AddressSize: // stage 2 with a 32-bit IPA space, input beyond it
                rig.SetupStage2(1, Granule.Size4K, 32, null, 0, Pa, 0x1000);
                return (rig, 1, Access.Read, null, true);
            default: throw new ArgumentOutOfRangeException(nameof(type));
        }
    }

    [Theory]
    [InlineData(SmmuEventType.BadStreamId, "cBadStreamId")]
    [InlineData(SmmuEventType.BadSte, "cBadSte")]
    [InlineData(SmmuEventType.StreamDisabled, "fStreamDisabled")]
    [InlineData(SmmuEventType.BadSubstreamId, "cBadSubstreamId")]
    [InlineData(SmmuEventType.Translation, "fTranslation")]
    [InlineData(SmmuEventType.Permission, "fPermission")]
    [InlineData(SmmuEventType.AddressSize, "fAddrSize")]
    public void Each_event_type_is_counted_once_under_its_own_key(SmmuEventType type, string key)
    {
        var (rig, sid, access, ssid, recorded) = Raise(type);
        ulong address = type == SmmuEventType.AddressSize ? 1UL << 33 : Iova;
        var t = rig.Translate(sid, address, access, ssid);
        Assert.True(t.Faulted);
        Assert.Equal(type, t.Fault);
        var st = rig.Smmu.Statistics;
        Assert.Equal(1, st.FaultsOf(type));
        Assert.Equal(1, st.Faults);
        Assert.Equal(recorded ? 1 : 0, st.FaultsRecorded);
        Assert.Equal(st.FaultsRecorded, rig.Smmu.EventQueue.Written + rig.Smmu.EventQueue.Lost);
        Assert.Equal(key, SmmuStatistics.Key(type));
        long sum = 0;
        foreach (var e in SmmuStatistics.EventTypes) sum += st.FaultsOf(e);
        Assert.Equal(st.Faults, sum);
    }

    [Fact]
    public void A_stage1_fault_without_cd_r_is_counted_but_not_recorded()
    {
        var rig = new SmmuRig();
        rig.SetupStage1(1, Granule.Size4K, 48, Iova + 0x10_0000, Pa, 0x1000);
        // CD.R = 0: the fault terminates the transaction silently (SMMUv3 §3.12.1).
        var cds = new ContextDescriptorTable(rig.Smmu.Memory, 0);
        var ste = rig.Smmu.StreamTable!.Read(1);
        var cd = ContextDescriptorTable.ReadCd(rig.Smmu.Memory, ste.S1ContextPtr) with { Record = false };
        cds.Install(0, cd);
        rig.Smmu.StreamTable!.Install(1, ste with { S1ContextPtr = cds.Base });
        Assert.True(rig.Translate(1, Iova).Faulted);
        Assert.Equal(1, rig.Smmu.FaultsOf(SmmuEventType.Translation));
        Assert.Equal(0, rig.Smmu.Statistics.FaultsRecorded);
        Assert.Equal(0, rig.Smmu.EventQueue.Written);
    }

    [Fact]
    public void Commands_are_counted_per_opcode_and_class_and_cmd_sync_waits_for_the_commands_before_it()
    {
        var rig = new SmmuRig();
        rig.SetupStage1(1, Granule.Size4K, 48, Iova, Pa, 0x1000);
        rig.Commands(
            new SmmuCommand { Opcode = SmmuOpcode.CfgiSte, Sid = 1 },
            new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Asid = SmmuRig.Asid, Address = Iova, Leaf = true },
            new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAsid, Asid = SmmuRig.Asid });
        var q = rig.Smmu.Statistics.Main;
        Assert.Equal(4, q.Commands);
        Assert.Equal(rig.Smmu.CommandQueue.Executed, q.Commands);
        Assert.Equal((1, 2, 1), (q.Of(SmmuCommandClass.Cfgi), q.Of(SmmuCommandClass.Tlbi), q.Of(SmmuCommandClass.Sync)));
        Assert.Equal((1, 1, 1), (q.Of(SmmuOpcode.TlbiNhVa), q.Of(SmmuOpcode.TlbiNhAsid), q.Of(SmmuOpcode.CmdSync)));
        // Written together at time 0: the sync completes after the three commands before it and itself.
        long perCommand = rig.Smmu.Clock.EdgeAfter(0, rig.Smmu.Options.Queues.CyclesPerCommand);
        Assert.Equal(1, q.SyncWait.Count);
        Assert.True(q.SyncWait.Max >= 4 * perCommand, $"CMD_SYNC waited {q.SyncWait.Max} ps");
        Assert.True(q.BusyPs >= 4 * perCommand);
    }

    [Fact]
    public void A_batch_that_does_not_fit_is_a_full_stall_and_an_extra_queue_counts_apart()
    {
        var rig = new SmmuRig(o => o.Queues.CommandQueueLog2 = 2);
        var tlbi = new SmmuCommand { Opcode = SmmuOpcode.TlbiNsnhAll };
        Assert.False(rig.Smmu.CommandQueue.Submit([tlbi, tlbi, tlbi, tlbi, tlbi]));
        Assert.False(rig.Smmu.CommandQueue.Submit([tlbi, tlbi, tlbi, tlbi, tlbi])); // polling again: the same stall
        rig.Smmu.CommandQueue.NoteFull(5);
        Assert.Equal(1, rig.Smmu.Statistics.Main.FullStalls);
        Assert.True(rig.Smmu.CommandQueue.Submit([tlbi, tlbi]));
        Assert.False(rig.Smmu.CommandQueue.Submit([tlbi, tlbi, tlbi])); // after a write, a new stall
        Assert.Equal(2, rig.Smmu.Statistics.Main.FullStalls);
        rig.Scheduler.Run();
        var extra = rig.Smmu.CreateCommandQueue(rig.Smmu.Memory.AllocateTable(16 << 3), 3);
        bool synced = false;
        Assert.True(extra.Submit([tlbi, new SmmuCommand { Opcode = SmmuOpcode.CmdSync }], () => synced = true));
        rig.Scheduler.Run();
        Assert.True(synced);
        Assert.Equal(1, rig.Smmu.Statistics.ExtraCount);
        var v = rig.Smmu.Statistics.All[1];
        Assert.Equal((2, 1), (v.Commands, v.Of(SmmuCommandClass.Tlbi)));
        Assert.Equal(2, rig.Smmu.Statistics.Main.Commands); // the two TLBIs above, not the extra queue's
    }

    private sealed class Sequence(List<string> log) : HardwareObserver
    {
        public override void OnSmmuAccepted(SmmuTransaction t, long configLookupDonePs) => log.Add("accepted");
        public override void OnSmmuConfigFetched(SmmuTransaction t, long startPs, bool joined) => log.Add(joined ? "fetch joined" : "fetched");
        public override void OnSmmuTlbLookup(SmmuTransaction t, bool hit) => log.Add(hit ? "tlb hit" : "tlb miss");
        public override void OnSmmuWalkStarted(int walker, SmmuTransaction t) => log.Add("walk");
        public override void OnSmmuFault(SmmuTransaction t, SmmuEventType type, bool stage2, bool recorded, bool stalled)
            => log.Add($"{SmmuStatistics.SpecName(type)}{(stalled ? " stalled" : "")}");
        public override void OnSmmuResumed(SmmuTransaction t, bool retry) => log.Add(retry ? "resume retry" : "resume abort");
        public override void OnSmmuTranslated(SmmuTransaction t) => log.Add(t.Faulted ? "done faulted" : "done");
        public override void OnSmmuCommand(CommandQueue queue, in SmmuCommand command, long submitPs, long fetchPs) => log.Add(command.Opcode.ToString());
    }

    [Fact]
    public void A_stalled_fault_resumed_with_retry_shows_its_whole_life_on_the_hooks()
    {
        var rig = new SmmuRig();
        rig.SetupStage1(1, Granule.Size4K, 48, Iova, Pa, 0x1000, stall: true);
        var log = new List<string>();
        rig.Smmu.SetObserver(new Sequence(log));
        var t = new SmmuTransaction { Sid = 1, Address = Iova + 0x1000, Access = Access.Read };
        Assert.True(rig.Smmu.TryAccept(t));
        rig.Scheduler.Run();
        Assert.True(rig.Smmu.EventQueue.TryRead(out var e));
        rig.Stage1!.Map(Iova + 0x1000, 0x9000_0000, 0x1000, Access.Read);
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.Resume, Sid = 1, Tag = e.Stag, Action = 1 });
        // RESUME acts when the consumer has read it; the command itself completes cyclesPerCommand later, before the retry's walk.
        Assert.Equal("accepted|fetched|tlb miss|walk|F_TRANSLATION stalled|resume retry|tlb miss|walk|Resume|CmdSync|done", string.Join("|", log));
        Assert.Equal((1, 1, 1), (rig.Smmu.Statistics.Faults, rig.Smmu.Statistics.FaultsStalled, rig.Smmu.Statistics.FaultsRecorded));
    }

    private sealed class Counting : HardwareObserver
    {
        public long Calls;
        public override void OnSmmuAccepted(SmmuTransaction t, long configLookupDonePs) => Calls++;
        public override void OnSmmuTlbLookup(SmmuTransaction t, bool hit) => Calls++;
        public override void OnSmmuWalkStarted(int walker, SmmuTransaction t) => Calls++;
        public override void OnWalkRead(int walker, TableStage stage, int level, ulong entryAddress, long issuePs, long donePs) => Calls++;
        public override void OnWalkFinished(int walker, long startPs, int reads, bool faulted) => Calls++;
        public override void OnSmmuTranslated(SmmuTransaction t) => Calls++;
    }

    private sealed class Sink : ISmmuClient
    {
        public long Done;
        public void OnTranslated(SmmuTransaction t) => Done++;
        public void OnSlotFree() { }
    }

    [Fact]
    public void Translations_with_observers_on_every_smmu_hook_allocate_nothing()
    {
        var rig = new SmmuRig(walkCaches: true);
        rig.SetupNested(1, Granule.Size4K, 48, Granule.Size4K, 48, null, Iova, 0x20_0000, 64 << 20);
        var a = new Counting();
        var b = new Counting();
        rig.Smmu.SetObserver(ObserverFanout.Combine(a, b));
        var sink = new Sink();
        rig.Smmu.Client = sink;
        var pool = new SmmuTransaction[8];
        for (int i = 0; i < pool.Length; i++) pool[i] = new SmmuTransaction { Sid = 1, Access = Access.Read };
        var rng = new Random(3);
        void Batch(int n)
        {
            for (int k = 0; k < n; k++)
            {
                foreach (var t in pool)
                {
                    t.Address = Iova + ((ulong)rng.Next(16384) << 12);
                    Assert.True(rig.Smmu.TryAccept(t));
                }
                rig.Scheduler.Run();
            }
        }
        Batch(200); // warm: pools, dictionaries, TLB
        long before = GC.GetAllocatedBytesForCurrentThread(), done = sink.Done;
        Batch(500);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before, n2 = sink.Done - done;
        Assert.Equal(500 * pool.Length, n2);
        Assert.True(a.Calls > 3 * n2 && a.Calls == b.Calls);
        Assert.True(bytes < n2, $"{bytes} bytes allocated for {n2} translations");
    }
}
