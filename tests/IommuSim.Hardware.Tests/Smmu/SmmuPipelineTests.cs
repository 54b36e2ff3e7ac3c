using IommuSim.Engine.Time;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;

namespace IommuSim.Hardware.Tests.Smmu;

/// <summary>The SMMUv3 pipeline end to end: configuration errors, faults in the event queue, stalls,
/// invalidation commands and their ordering, hardware dirty state.</summary>
public class SmmuPipelineTests
{
    [Fact]
    public void An_unmapped_address_faults_and_the_event_names_stream_address_and_stage()
    {
        var rig = new SmmuRig();
        rig.SetupStage1(1, Granule.Size4K, 48, 0x4000_0000, 0x8000_0000, 0x1000);
        var t = rig.Translate(1, 0x4000_5008, Access.Write);
        Assert.True(t.Faulted);
        Assert.Equal(SmmuEventType.Translation, t.Fault);
        Assert.True(rig.Smmu.EventQueue.TryRead(out var e));
        Assert.Equal((SmmuEventType.Translation, 1u, 0x4000_5008UL, true, false, SmmuEventClass.Input),
            (e.Type, e.Sid, e.InputAddress, e.Write, e.Stage2, e.Class));
    }

    [Fact]
    public void A_nested_stage2_fault_on_a_stage1_table_reports_class_tt_with_the_ipa()
    {
        var rig = new SmmuRig();
        rig.SetupNested(5, Granule.Size4K, 48, Granule.Size4K, 48, null, 0x1000_0000, 0x20_0000, 1 << 20);
        Assert.False(rig.Translate(5, 0x1000_0000).Faulted); // the configuration (STE, CD) is now cached
        // The guest's table pages live in the upper half of its RAM; stage 2 stops mapping them.
        rig.Stage2!.Unmap(1UL << 29, 1UL << 29);
        var t = rig.Translate(5, 0x1000_1000);
        Assert.True(t.Faulted);
        Assert.True(t.FaultInStage2);
        Assert.True(rig.Smmu.EventQueue.TryRead(out var e));
        Assert.Equal(SmmuEventClass.TranslationTable, e.Class);
        Assert.True(e.Stage2);
        Assert.True(e.Ipa >= 1UL << 29);
    }

    [Fact]
    public void Stage2_refuses_a_write_to_a_read_only_page_and_says_so()
    {
        var rig = new SmmuRig();
        rig.SetupStage2(2, Granule.Size4K, 48, null, 0x10_0000, 0x8000_0000, 0x1000, access: Access.Read);
        Assert.False(rig.Translate(2, 0x10_0000).Faulted);
        var w = rig.Translate(2, 0x10_0010, Access.Write);
        Assert.True(w.Faulted);
        Assert.Equal(SmmuEventType.Permission, w.Fault);
        Assert.True(w.FaultInStage2);
    }

    [Theory]
    [InlineData(false, SmmuEventType.BadSte)]
    [InlineData(true, SmmuEventType.BadStreamId)]
    public void An_invalid_ste_or_a_stream_beyond_the_table_is_a_configuration_error(bool beyond, SmmuEventType expected)
    {
        var rig = new SmmuRig(log2StreamIds: 4);
        var t = rig.Translate(beyond ? 200u : 3u, 0x1000);
        Assert.True(t.Faulted);
        Assert.Equal(expected, t.Fault);
    }

    [Fact]
    public void Bypass_passes_the_address_through_and_abort_terminates_silently()
    {
        var rig = new SmmuRig();
        rig.Smmu.StreamTable!.Install(1, new StreamTableEntry { Valid = true, Config = SteConfig.Bypass });
        rig.Smmu.StreamTable!.Install(2, new StreamTableEntry { Valid = true, Config = SteConfig.Abort });
        var b = rig.Translate(1, 0x1234_5678);
        Assert.False(b.Faulted);
        Assert.Equal(0x1234_5678UL, b.OutputAddress);
        Assert.True(rig.Translate(2, 0x1000).Faulted);
        Assert.Equal(0, rig.Smmu.EventQueue.Pending);
    }

    [Fact]
    public void A_substream_beyond_s1cdmax_is_c_bad_substreamid()
    {
        var rig = new SmmuRig();
        rig.SetupStage1(1, Granule.Size4K, 48, 0x4000_0000, 0x8000_0000, 0x1000, cdMax: 2);
        Assert.False(rig.Translate(1, 0x4000_0000, ssid: 0).Faulted);
        var t = rig.Translate(1, 0x4000_0000, ssid: 4);
        Assert.Equal(SmmuEventType.BadSubstreamId, t.Fault);
    }

    [Fact]
    public void The_tlb_keeps_a_stale_translation_until_tlbi_and_cmd_sync()
    {
        var rig = new SmmuRig();
        rig.SetupStage1(1, Granule.Size4K, 48, 0x4000_0000, 0x8000_0000, 0x1000);
        Assert.False(rig.Translate(1, 0x4000_0000).Faulted);
        rig.Stage1!.Unmap(0x4000_0000, 0x1000); // software cleared the PTE but has not invalidated
        var stale = rig.Translate(1, 0x4000_0040);
        Assert.False(stale.Faulted);
        Assert.True(stale.TlbHit);
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Vmid = 0, Asid = SmmuRig.Asid, Address = 0x4000_0000, Leaf = true });
        Assert.True(rig.Translate(1, 0x4000_0040).Faulted);
    }

    [Fact]
    public void A_changed_ste_is_used_only_after_cfgi_ste()
    {
        var rig = new SmmuRig();
        rig.SetupStage1(1, Granule.Size4K, 48, 0x4000_0000, 0x8000_0000, 0x1000);
        Assert.False(rig.Translate(1, 0x4000_0000).Faulted);
        rig.Smmu.StreamTable!.Install(1, new StreamTableEntry { Valid = true, Config = SteConfig.Abort });
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAll, Vmid = 0 });
        Assert.False(rig.Translate(1, 0x4000_0000).Faulted); // configuration cache still holds the old STE
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.CfgiSte, Sid = 1 });
        Assert.True(rig.Translate(1, 0x4000_0000).Faulted);
    }

    [Fact]
    public void Leaf_tlbi_keeps_the_walk_caches_and_non_leaf_tlbi_flushes_them()
    {
        var rig = new SmmuRig(walkCaches: true);
        rig.SetupStage1(1, Granule.Size4K, 48, 0x4000_0000, 0x8000_0000, 0x10_0000);
        rig.Translate(1, 0x4000_0000);
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Asid = SmmuRig.Asid, Address = 0x4000_0000, Leaf = true });
        Assert.Equal(1, rig.Translate(1, 0x4000_0000).WalkReads);
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Asid = SmmuRig.Asid, Address = 0x4000_0000, Leaf = false });
        Assert.Equal(4, rig.Translate(1, 0x4000_0000).WalkReads);
    }

    private sealed class Atc : ISmmuAtsEndpoint
    {
        public int Invalidations;
        public int InvalidateAtc(bool substreamValid, uint ssid, ulong address, uint log2Pages) => ++Invalidations;
        public void OnPriResponse(bool substreamValid, uint ssid, ushort prgi, byte response) { }
    }

    [Fact]
    public void Cmd_sync_completes_only_after_the_atc_invalidation_round_trip()
    {
        var rig = new SmmuRig(o => o.Queues.AtcInvalidateRoundTripNs = 2000);
        var atc = new Atc();
        rig.Smmu.RegisterEndpoint(1, atc);
        long start = rig.Scheduler.Now;
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.AtcInv, Sid = 1, Address = 0x1000 });
        Assert.Equal(1, atc.Invalidations);
        Assert.True(rig.Scheduler.Now - start >= SimTime.FromNs(2000));
        long plain = rig.Scheduler.Now;
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.CfgiSte, Sid = 1 });
        Assert.True(rig.Scheduler.Now - plain < SimTime.FromNs(2000));
        Assert.Equal(2, rig.Smmu.CommandQueue.Syncs);
    }

    [Fact]
    public void An_illegal_command_stops_the_queue_until_software_skips_it()
    {
        var rig = new SmmuRig();
        bool synced = false;
        Assert.True(rig.Smmu.CommandQueue.Submit(
            [new SmmuCommand { Opcode = (SmmuOpcode)0x7F }, new SmmuCommand { Opcode = SmmuOpcode.CmdSync }], () => synced = true));
        rig.Scheduler.Run();
        Assert.True(rig.Smmu.CommandQueue.Error);
        Assert.False(synced);
        rig.Smmu.CommandQueue.SkipError();
        rig.Scheduler.Run();
        Assert.True(synced);
    }

    [Fact]
    public void A_stalled_fault_waits_for_resume_and_a_retry_succeeds_once_mapped()
    {
        var rig = new SmmuRig();
        rig.SetupStage1(1, Granule.Size4K, 48, 0x4000_0000, 0x8000_0000, 0x1000, stall: true);
        var t = new SmmuTransaction { Sid = 1, Address = 0x4000_1000, Access = Access.Read };
        Assert.True(rig.Smmu.TryAccept(t));
        rig.Scheduler.Run();
        Assert.Empty(rig.Completed);
        Assert.True(rig.Smmu.EventQueue.TryRead(out var e));
        Assert.True(e.Stall);
        rig.Stage1!.Map(0x4000_1000, 0x9000_0000, 0x1000, Access.Read); // the fault handler maps the page
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.Resume, Sid = 1, Tag = e.Stag, Action = 1 });
        Assert.Single(rig.Completed);
        Assert.False(t.Faulted);
        Assert.Equal(0x9000_0000UL, t.OutputAddress);
    }

    [Fact]
    public void The_event_queue_overflows_by_losing_records_and_toggling_ovflg()
    {
        var rig = new SmmuRig(o => o.Queues.EventQueueLog2 = 2);
        rig.SetupStage1(1, Granule.Size4K, 48, 0x4000_0000, 0x8000_0000, 0x1000);
        for (int i = 0; i < 6; i++) rig.Translate(1, 0x5000_0000 + ((ulong)i << 12));
        Assert.Equal(4, rig.Smmu.EventQueue.Pending);
        Assert.Equal(2, rig.Smmu.EventQueue.Lost);
        Assert.True(rig.Smmu.EventQueue.AcknowledgeOverflow());
        Assert.False(rig.Smmu.EventQueue.AcknowledgeOverflow());
    }

    [Theory]
    [InlineData(SmmuStage.Stage1)]
    [InlineData(SmmuStage.Stage2)]
    public void Hardware_dirty_state_marks_a_writable_clean_leaf_on_the_first_write(SmmuStage stage)
    {
        var rig = new SmmuRig();
        if (stage == SmmuStage.Stage1)
            rig.SetupStage1(1, Granule.Size4K, 48, 0x4000_0000, 0x8000_0000, 0x2000, hardwareDirty: true);
        else
        {
            var t2 = new VmsaPageTable(rig.Smmu.Memory, SmmuStage.Stage2, Granule.Size4K, 48, dirtyBitModifier: true);
            t2.Map(0x4000_0000, 0x8000_0000, 0x2000, Access.ReadWrite);
            rig.Smmu.StreamTable!.Install(1, new StreamTableEntry
            {
                Valid = true, Config = SteConfig.Stage2, S2Vmid = 1, S2T0Sz = 16, S2Sl0 = StreamTableEntry.EncodeSl0(Granule.Size4K, 0),
                S2Granule = Granule.Size4K, S2Aa64 = true, S2HardwareDirty = true, S2HardwareAccess = true, S2Ttb = t2.Root,
            });
        }
        var table = stage == SmmuStage.Stage1 ? rig.Stage1! : null;
        Assert.False(rig.Translate(1, 0x4000_0000, Access.Read).Faulted);
        Assert.False(rig.Translate(1, 0x4000_0008, Access.Write).Faulted); // hits a clean entry: walks again to set dirty
        Assert.Equal(1, rig.Smmu.DirtyUpdateWalks);
        Assert.True(rig.Translate(1, 0x4000_0010, Access.Write).TlbHit); // now dirty: a plain hit
        if (table is not null)
        {
            Assert.True(table.ReadAndClearDirty(0x4000_0000));
            Assert.False(table.ReadAndClearDirty(0x4000_1000)); // never written
        }
        Assert.True(rig.Smmu.Walker.HardwareUpdates >= 1);
    }
}
