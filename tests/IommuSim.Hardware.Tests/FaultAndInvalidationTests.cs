using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Tests;

public class FaultAndInvalidationTests
{
    private const ulong Iova = 0x4000_0000, Pa = 0x8000_0000;

    [Fact]
    public void Dma_to_an_unmapped_page_faults_and_never_reaches_memory()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, Iova, Pa, 0x4000);
        long writesBefore = tp.Platform.Timing.Writes;
        var r = tp.Dma(Iova + 0x10_0000);
        Assert.True(r.Faulted);
        Assert.Equal(FaultReason.SecondStageNotPresent, r.Reason);
        Assert.Equal(writesBefore, tp.Platform.Timing.Writes);
        Assert.Equal(1, tp.Platform.Iommu.Faults.CountOf(FaultReason.SecondStageNotPresent));
        Assert.True(tp.Platform.Iommu.Faults.TryReadFault(out var rec));
        Assert.Equal(tp.Rid.Value, rec.RequesterId);
        Assert.Equal(Iova + 0x10_0000, rec.Address);
    }

    [Fact]
    public void Write_to_a_read_only_page_is_a_permission_fault_but_reads_work()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, Iova, Pa, 0x4000, access: Access.Read);
        long writes = tp.Platform.Timing.Writes;
        var w = tp.Dma(Iova, 64, Access.Write);
        Assert.True(w.Faulted);
        Assert.Equal(FaultReason.Permission, w.Reason);
        Assert.Equal(writes, tp.Platform.Timing.Writes);
        var rd = tp.Dma(Iova, 64, Access.Read);
        Assert.False(rd.Faulted);
        // And the write still faults when the translation is cached.
        Assert.True(tp.Dma(Iova + 8, 8, Access.Write).Faulted);
    }

    [Fact]
    public void Missing_context_and_pasid_entries_fault_with_their_reasons()
    {
        var tp = new TestPlatform();
        Assert.Equal(FaultReason.ContextNotPresent, tp.Dma(Iova).Reason);
        tp.Platform.Iommu.Tables.SetContext(tp.Rid, 0);
        Assert.Equal(FaultReason.PasidNotValid, tp.Dma(Iova).Reason);
    }

    [Fact]
    public void Address_beyond_the_table_width_faults()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(3, Iova, Pa, 0x4000); // 39-bit table
        var r = tp.Dma(1UL << 40);
        Assert.True(r.Faulted);
        Assert.Equal(FaultReason.AddressWidth, r.Reason);
    }

    [Fact]
    public void Cached_translation_survives_an_unmap_until_invalidated()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, Iova, Pa, 0x4000);
        Assert.False(tp.Dma(Iova).Faulted);
        tp.Stage2!.Unmap(Iova, 0x1000);
        // Stale: the IOTLB still has it.
        Assert.False(tp.Dma(Iova).Faulted);
        var iq = tp.Platform.Iommu.Invalidation;
        var (addr, am) = InvalidationDescriptor.CoveringMask(Iova, 0x1000);
        iq.Submit(InvalidationDescriptor.IotlbPages(tp.Did, addr, am));
        long wait = iq.Submit(InvalidationDescriptor.Wait());
        tp.Platform.RunUntil(() => iq.IsComplete(wait));
        Assert.True(tp.Dma(Iova).Faulted);
        // Neighbours stay cached (no walk needed).
        Assert.False(tp.Dma(Iova + 0x1000).Faulted);
    }

    [Fact]
    public void Invalidation_descriptors_take_their_modelled_cycles_in_order()
    {
        var tp = new TestPlatform(tweak: o => o.Invalidation.DescriptorCycles = 150);
        var iq = tp.Platform.Iommu.Invalidation;
        long start = tp.Platform.Scheduler.Now;
        iq.Submit(InvalidationDescriptor.IotlbGlobal());
        iq.Submit(InvalidationDescriptor.ContextGlobal());
        long wait = iq.Submit(InvalidationDescriptor.Wait());
        Assert.False(iq.IsComplete(wait));
        tp.Platform.RunUntil(() => iq.IsComplete(wait));
        // 3 descriptors × 150 cycles at 1.5 GHz = 300 ns.
        Assert.Equal(300_000, tp.Platform.Scheduler.Now - start);
        Assert.Equal(3, iq.Descriptors);
        Assert.Equal(300_000, iq.BusyPs);
    }

    [Fact]
    public void Pasid_cache_invalidation_makes_a_changed_pasid_entry_visible()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, Iova, Pa, 0x4000);
        Assert.False(tp.Dma(Iova).Faulted);
        tp.Platform.Iommu.Tables.ClearPasidEntry(tp.Rid, 0);
        var iq = tp.Platform.Iommu.Invalidation;
        iq.Submit(InvalidationDescriptor.PasidCacheEntry(tp.Did, 0));
        iq.Submit(InvalidationDescriptor.IotlbDomain(tp.Did));
        long wait = iq.Submit(InvalidationDescriptor.Wait());
        tp.Platform.RunUntil(() => iq.IsComplete(wait));
        Assert.Equal(FaultReason.PasidNotValid, tp.Dma(Iova).Reason);
    }

    [Fact]
    public void Dirty_tracking_sets_the_second_stage_dirty_bit_on_writes_only()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, Iova, Pa, 0x4000, dirty: true);
        tp.Dma(Iova, 64, Access.Read);
        Assert.False(tp.Stage2!.TestDirty(Iova, clear: false));
        tp.Dma(Iova + 0x40, 64, Access.Write); // IOTLB hit on a clean entry
        Assert.True(tp.Stage2.TestDirty(Iova, clear: true));
        Assert.False(tp.Stage2.TestDirty(Iova + 0x1000, clear: false));
        tp.Dma(Iova + 0x1000, 64, Access.Write); // walk for a write
        Assert.True(tp.Stage2.TestDirty(Iova + 0x1000, clear: false));
    }

    [Fact]
    public void Passthrough_translates_to_the_same_address_without_iotlb_lookups()
    {
        var tp = new TestPlatform();
        tp.Platform.Iommu.Tables.SetContext(tp.Rid, 0);
        tp.Platform.Iommu.Tables.SetPasidEntry(tp.Rid, 0, new PasidTableEntry(true, Pgtt.PassThrough, 1, 0, 4, 0, 4));
        var r = tp.Dma(0x1234_5678);
        Assert.False(r.Faulted);
        Assert.Equal(0x1234_5678UL, r.PhysicalAddress);
        Assert.Equal(0, tp.Platform.Iommu.Iotlb.Lookups);
    }

    [Fact]
    public void Concurrent_misses_to_one_page_coalesce_into_one_walk()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, Iova, Pa, 0x4000);
        var dev = tp.Platform.Devices[0];
        for (int i = 0; i < 4; i++)
        {
            var r = dev.Rent();
            r.Iova = Iova + (ulong)(i * 64);
            r.Bytes = 64;
            r.IsWrite = true;
            dev.Issue(r);
        }
        tp.Platform.RunUntil(() => dev.Outstanding == 0);
        Assert.Equal(1, tp.Platform.Iommu.WalkCount);
        Assert.Equal(3, tp.Platform.Iommu.WalksCoalesced);
        Assert.Equal(4, tp.Platform.Iommu.Iotlb.Misses);
    }
}
