using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Tests;

/// <summary>Reference walk lengths (Bhargava et al. ASPLOS'08; x86-64/VT-d paging structures).</summary>
public class PageWalkLengthTests
{
    [Theory]
    [InlineData(3, PageSize.Size4K, 3)]
    [InlineData(4, PageSize.Size4K, 4)]
    [InlineData(5, PageSize.Size4K, 5)]
    [InlineData(4, PageSize.Size2M, 3)]
    [InlineData(4, PageSize.Size1G, 2)]
    public void Cold_single_stage_walk_reads_one_entry_per_level(int levels, PageSize page, int expected)
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(levels, 0x4000_0000, 0x8000_0000, 1UL << 30, page);
        var r = tp.Dma(0x4000_1040);
        Assert.False(r.Faulted);
        Assert.Equal(expected, r.WalkReads);
        Assert.Equal(0x8000_1040UL, r.PhysicalAddress);
    }

    [Theory]
    [InlineData(4, 4)]
    [InlineData(5, 5)]
    public void Cold_first_stage_walk_reads_n_entries(int levels, int expected)
    {
        var tp = new TestPlatform();
        tp.SetupFirstStage(levels, 0x7f00_0000_0000, 0x9000_0000, 1 << 20);
        var r = tp.Dma(0x7f00_0000_2008);
        Assert.False(r.Faulted);
        Assert.Equal(expected, r.WalkReads);
        Assert.Equal(0x9000_2008UL, r.PhysicalAddress);
    }

    [Theory]
    [InlineData(4, 4, PageSize.Size4K, 24)]
    [InlineData(5, 5, PageSize.Size4K, 35)]
    [InlineData(4, 5, PageSize.Size4K, 29)]
    [InlineData(4, 4, PageSize.Size2M, 19)] // stage-2 depth 3 with 2M leaves: (4+1)(3+1)-1
    [InlineData(4, 4, PageSize.Size1G, 14)] // (4+1)(2+1)-1
    public void Cold_nested_walk_reads_n_plus_1_times_m_plus_1_minus_1(int n, int m, PageSize s2Page, int expected)
    {
        var tp = new TestPlatform();
        tp.SetupNested(n, m, 0x1234_5000_0000, 0x20_0000, 1 << 20, s2Page, ramBytes: 1UL << 30);
        var r = tp.Dma(0x1234_5000_3010);
        Assert.False(r.Faulted);
        Assert.Equal(expected, r.WalkReads);
        Assert.Equal(expected, (int)tp.Platform.Iommu.WalkMemoryReads);
    }

    [Fact]
    public void Second_access_hits_the_iotlb_and_reads_nothing()
    {
        var tp = new TestPlatform();
        tp.SetupNested(4, 4, 0x1000_0000, 0x20_0000, 1 << 20);
        Assert.Equal(24, tp.Dma(0x1000_0000).WalkReads);
        var second = tp.Dma(0x1000_0040);
        Assert.Equal(0, second.WalkReads);
        Assert.Equal(1, tp.Platform.Iommu.Iotlb.Hits);
    }

    [Fact]
    public void Walk_caches_shorten_a_nested_walk_to_a_neighbouring_page()
    {
        var tp = new TestPlatform(walkCaches: true);
        tp.SetupNested(4, 4, 0x1000_0000, 0x20_0000, 1 << 20);
        // Even the first walk reuses stage-2 upper levels across the stage-1 table pages (all in one guest 2M region).
        int first = tp.Dma(0x1000_0000).WalkReads;
        Assert.InRange(first, 5, 23);
        // Next page: the PDE-level caches and the nested TLB leave only the stage-1 PTE and the final stage-2 walk.
        int reads = tp.Dma(0x1000_1000).WalkReads;
        Assert.True(reads < 24, $"expected fewer than 24 reads with walk caches, got {reads}");
        Assert.Equal(2, reads); // S1 PTE (table HPA from the nested TLB) + final S2 PTE (S2 PDE cached)
    }
}
