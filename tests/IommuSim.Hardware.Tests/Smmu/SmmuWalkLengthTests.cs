using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.PageTables;

namespace IommuSim.Hardware.Tests.Smmu;

/// <summary>
/// Exact walk lengths of the SMMUv3 model for every granule and level count (VMSAv8-64, Arm ARM
/// D8.2): a cold one-stage walk reads one descriptor per level from the start level down to the leaf;
/// a nested walk translates each of the n stage-1 descriptor addresses and the output IPA through an
/// m-level stage 2: n(m + 1) + m = (n + 1)(m + 1) − 1 reads, as for VT-d.
/// </summary>
public class SmmuWalkLengthTests
{
    [Theory]
    // granule, input bits, largest leaf, expected reads
    [InlineData(Granule.Size4K, 48, 12, 4)]
    [InlineData(Granule.Size4K, 39, 12, 3)]
    [InlineData(Granule.Size4K, 30, 12, 2)]   // start level 2
    [InlineData(Granule.Size4K, 48, 21, 3)]   // 2M block at level 2
    [InlineData(Granule.Size4K, 48, 30, 2)]   // 1G block at level 1
    [InlineData(Granule.Size16K, 48, 14, 4)]  // level 0 resolves one bit
    [InlineData(Granule.Size16K, 47, 14, 3)]
    [InlineData(Granule.Size16K, 36, 14, 2)]
    [InlineData(Granule.Size16K, 48, 25, 3)]  // 32M block
    [InlineData(Granule.Size64K, 48, 16, 3)]  // start level 1, 6 bits
    [InlineData(Granule.Size64K, 42, 16, 2)]
    [InlineData(Granule.Size64K, 48, 29, 2)]  // 512M block
    public void Cold_stage1_walk_reads_one_descriptor_per_level(Granule g, int inputBits, int maxLeaf, int expected)
    {
        var rig = new SmmuRig();
        ulong iova = 1UL << (inputBits - 2), pa = 0x8000_0000, bytes = 1UL << Math.Max(maxLeaf, 20);
        rig.SetupStage1(1, g, inputBits, iova, pa, bytes, maxLeaf);
        var t = rig.Translate(1, iova + 0x1040);
        Assert.False(t.Faulted, t.Fault.ToString());
        Assert.Equal(expected, t.WalkReads);
        Assert.Equal(pa + 0x1040, t.OutputAddress);
        Assert.Equal(expected, (int)rig.Smmu.Walker.Stage1Reads);
    }

    [Theory]
    // granule, input bits, start level (null: as stage 1), expected reads; start levels below the
    // natural one use concatenated tables (up to 16)
    [InlineData(Granule.Size4K, 48, null, 4)]
    [InlineData(Granule.Size4K, 40, 1, 3)]    // 2 concatenated level-1 tables
    [InlineData(Granule.Size4K, 34, 2, 2)]    // 16 concatenated level-2 tables
    [InlineData(Granule.Size16K, 40, 2, 2)]   // 40 − 25 = 15 bits: 16 concatenated level-2 tables
    [InlineData(Granule.Size64K, 42, null, 2)]
    [InlineData(Granule.Size64K, 44, 2, 2)]   // 44 − 29 = 15 bits: 4 concatenated tables
    public void Cold_stage2_walk_reads_one_descriptor_per_level(Granule g, int inputBits, int? start, int expected)
    {
        var rig = new SmmuRig();
        ulong ipa = 1UL << (inputBits - 1);
        rig.SetupStage2(2, g, inputBits, start, ipa, 0x8000_0000, 1 << 20);
        var t = rig.Translate(2, ipa + 0x2008, Access.Write);
        Assert.False(t.Faulted, t.Fault.ToString());
        Assert.Equal(expected, t.WalkReads);
        Assert.Equal(0x8000_2008UL, t.OutputAddress);
        Assert.Equal(expected, (int)rig.Smmu.Walker.Stage2Reads);
    }

    [Theory]
    // stage 1: granule, input bits; stage 2: granule, input bits, start level; expected n(m+1)+m
    [InlineData(Granule.Size4K, 48, Granule.Size4K, 48, null, 24)]  // n = 4, m = 4
    [InlineData(Granule.Size4K, 39, Granule.Size4K, 40, 1, 15)]     // n = 3, m = 3
    [InlineData(Granule.Size64K, 42, Granule.Size4K, 40, 1, 11)]    // n = 2, m = 3
    [InlineData(Granule.Size16K, 48, Granule.Size64K, 42, null, 14)] // n = 4, m = 2
    [InlineData(Granule.Size4K, 48, Granule.Size16K, 36, null, 14)]  // n = 4, m = 2
    public void Cold_nested_walk_reads_n_times_m_plus_1_plus_m(Granule g1, int in1, Granule g2, int in2, int? s2Start, int expected)
    {
        var rig = new SmmuRig();
        ulong iova = 1UL << (in1 - 3);
        rig.SetupNested(5, g1, in1, g2, in2, s2Start, iova, 0x20_0000, 1 << 20);
        var t = rig.Translate(5, iova + 0x3010);
        Assert.False(t.Faulted, $"{t.Fault} stage2={t.FaultInStage2} ipa=0x{t.FaultIpa:x}");
        Assert.Equal(expected, t.WalkReads);
        Assert.Equal(SmmuRig.GuestRamPa + 0x20_3010, t.OutputAddress);
    }

    [Fact]
    public void A_second_access_hits_the_tlb_and_reads_nothing()
    {
        var rig = new SmmuRig();
        rig.SetupNested(5, Granule.Size4K, 48, Granule.Size4K, 48, null, 0x1000_0000, 0x20_0000, 1 << 20);
        Assert.Equal(24, rig.Translate(5, 0x1000_0000).WalkReads);
        var second = rig.Translate(5, 0x1000_0040);
        Assert.True(second.TlbHit);
        Assert.Equal(0, second.WalkReads);
    }

    [Theory]
    [InlineData(Granule.Size4K, 1)]
    [InlineData(Granule.Size16K, 1)]
    [InlineData(Granule.Size64K, 1)]
    public void Walk_caches_leave_only_the_leaf_of_a_neighbouring_page(Granule g, int expected)
    {
        var rig = new SmmuRig(walkCaches: true);
        rig.SetupStage1(1, g, 48, 0x4000_0000, 0x8000_0000, 1 << 20, g.Shift());
        rig.Translate(1, 0x4000_0000);
        Assert.Equal(expected, rig.Translate(1, 0x4000_0000 + g.Bytes()).WalkReads);
    }

    [Fact]
    public void Nested_walk_caches_and_the_ipa_cache_leave_two_reads_for_a_neighbouring_page()
    {
        var rig = new SmmuRig(walkCaches: true);
        rig.SetupNested(5, Granule.Size4K, 48, Granule.Size4K, 48, null, 0x1000_0000, 0x20_0000, 1 << 20);
        int first = rig.Translate(5, 0x1000_0000).WalkReads;
        Assert.InRange(first, 5, 24); // stage-2 upper levels are reused between the stage-1 table pages
        // The stage-1 leaf's IPA is in the IPA cache (same table page); the output IPA's stage-2 level-2 table is cached.
        Assert.Equal(2, rig.Translate(5, 0x1000_1000).WalkReads);
    }

    [Fact]
    public void Walk_caches_off_every_walk_is_cold()
    {
        var rig = new SmmuRig(walkCaches: false);
        rig.SetupStage1(1, Granule.Size4K, 48, 0x4000_0000, 0x8000_0000, 1 << 20);
        for (ulong p = 0; p < 4; p++) Assert.Equal(4, rig.Translate(1, 0x4000_0000 + (p << 12)).WalkReads);
    }
}
