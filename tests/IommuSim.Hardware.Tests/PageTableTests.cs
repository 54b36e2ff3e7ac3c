using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Tests;

public class PageTableTests
{
    private static (PageTable Table, FrameAllocator Frames) New(TableStage stage = TableStage.Second, int levels = 4)
    {
        var mem = new PhysicalMemory();
        var frames = new FrameAllocator(mem, 0x100_0000, 1UL << 40);
        return (new PageTable(new HostTableMemory(mem, frames), stage, levels), frames);
    }

    [Theory]
    [InlineData(PageSize.Size4K, 0x4000_0000UL, 0x8000_0000UL, 0x40_0000UL, PageSize.Size4K)]
    [InlineData(PageSize.Size2M, 0x4000_0000UL, 0x8000_0000UL, 0x40_0000UL, PageSize.Size2M)]
    [InlineData(PageSize.Size1G, 0x4000_0000UL, 0x8000_0000UL, 0x4000_0000UL, PageSize.Size1G)]
    [InlineData(PageSize.Size2M, 0x4000_1000UL, 0x8000_1000UL, 0x40_0000UL, PageSize.Size4K)] // unaligned: 4K leaves only at the edges
    public void Map_uses_the_largest_aligned_leaf(PageSize max, ulong iova, ulong pa, ulong len, PageSize expectFirst)
    {
        var (t, _) = New();
        t.Map(iova, pa, len, Access.ReadWrite, max);
        Assert.True(t.TryTranslate(iova + 0x123, out ulong got, out var acc, out var size));
        Assert.Equal(pa + 0x123, got);
        Assert.Equal(Access.ReadWrite, acc);
        Assert.Equal(expectFirst, size);
        Assert.True(t.TryTranslate(iova + len - 1, out got, out _, out _));
        Assert.Equal(pa + len - 1, got);
        Assert.False(t.TryTranslate(iova + len, out _, out _, out _));
    }

    [Fact]
    public void A_large_leaf_replaces_an_emptied_lower_table_but_never_a_used_one()
    {
        // __domain_mapping: old small page tables are freed to make room for a superpage (then flushed).
        var (t, _) = New();
        t.Map(0x4000_0000, 0x8000_0000, 0x1000, Access.ReadWrite, PageSize.Size4K);
        t.Unmap(0x4000_0000, 0x1000); // the PT under this PDE stays, empty
        t.Map(0x4000_0000, 0x8000_0000, 0x20_0000, Access.ReadWrite, PageSize.Size2M);
        Assert.Equal(1, t.TablesFreedByMap);
        Assert.True(t.TryTranslate(0x4000_1234, out ulong pa, out _, out var size));
        Assert.Equal((0x8000_1234UL, PageSize.Size2M), (pa, size));
        t.Map(0x4020_0000, 0x9000_0000, 0x1000, Access.ReadWrite, PageSize.Size4K);
        Assert.Throws<InvalidOperationException>(() => t.Map(0x4020_0000, 0x9000_0000, 0x20_0000, Access.ReadWrite, PageSize.Size2M));
    }

    [Fact]
    public void Unmap_frees_only_tables_it_covers_entirely_and_refuses_to_split_large_pages()
    {
        // drivers/iommu/intel/iommu.c dma_pte_clear_level: "If range covers entire pagetable, free it";
        // a table the range only empties stays in place (and in the paging-structure caches).
        var (t, frames) = New();
        long before = frames.TableFramesInUse;
        t.Map(0x4000_0000, 0x8000_0000, 0x20_0000, Access.ReadWrite, PageSize.Size4K);
        Assert.Equal(4, t.TablePages); // PML4, PDPT, PD, PT
        Assert.Equal(0x1000UL, t.Unmap(0x4000_0000, 0x1000));
        Assert.Equal(0x1F_F000UL, t.Unmap(0x4000_1000, 0x1F_F000)); // empties the PT without covering it in one call
        Assert.Equal(4, t.TablePages);
        t.Map(0x4000_0000, 0x8000_0000, 0x20_0000, Access.ReadWrite, PageSize.Size4K);
        Assert.Equal(0x20_0000UL, t.Unmap(0x4000_0000, 0x20_0000)); // covers the PT: freed
        Assert.Equal(3, t.TablePages);
        Assert.Equal(before + 2, frames.TableFramesInUse);
        t.Map(0x4000_0000, 0x8000_0000, 0x20_0000, Access.ReadWrite, PageSize.Size4K);
        Assert.Equal(0x20_0000UL, t.Unmap(0, 1UL << 39)); // covers the PDPT and all below it
        Assert.Equal(1, t.TablePages);
        Assert.Equal(before, frames.TableFramesInUse);

        t.Map(0x4000_0000, 0x8000_0000, 0x20_0000, Access.ReadWrite, PageSize.Size2M);
        Assert.Throws<InvalidOperationException>(() => t.Unmap(0x4000_0000, 0x1000));
        Assert.True(t.TryTranslate(0x4000_0000, out _, out _, out _));
    }

    [Fact]
    public void Double_map_is_rejected_and_leaves_the_table_unchanged()
    {
        var (t, _) = New();
        t.Map(0x1000_0000, 0x2000_0000, 0x3000, Access.Read);
        Assert.Throws<InvalidOperationException>(() => t.Map(0x0FFF_E000, 0x3000_0000, 0x4000, Access.Read));
        Assert.False(t.TryTranslate(0x0FFF_E000, out _, out _, out _));
        Assert.True(t.TryTranslate(0x1000_0000, out ulong pa, out _, out _));
        Assert.Equal(0x2000_0000UL, pa);
        Assert.Equal(0x3000UL, t.MappedBytes);
    }

    [Fact]
    public void Random_map_unmap_sequences_match_a_dictionary_model()
    {
        var (t, frames) = New(TableStage.First, 4);
        var model = new Dictionary<ulong, ulong>();
        var rng = new Random(5);
        for (int step = 0; step < 400; step++)
        {
            ulong page = (ulong)rng.Next(0, 2048);
            ulong n = (ulong)rng.Next(1, 8);
            bool free = Enumerable.Range(0, (int)n).All(i => !model.ContainsKey(page + (ulong)i));
            if (rng.Next(2) == 0 && free)
            {
                ulong pa = 0x1_0000_0000 + ((ulong)rng.Next(0, 1 << 20) << 12);
                t.Map(page << 12, pa, n << 12, Access.ReadWrite, PageSize.Size4K);
                for (ulong i = 0; i < n; i++) model[page + i] = pa + (i << 12);
            }
            else
            {
                ulong removed = t.Unmap(page << 12, n << 12);
                ulong expected = 0;
                for (ulong i = 0; i < n; i++) if (model.Remove(page + i)) expected += 0x1000;
                Assert.Equal(expected, removed);
            }
        }
        for (ulong p = 0; p < 2056; p++)
        {
            bool mapped = t.TryTranslate(p << 12, out ulong pa, out _, out _);
            Assert.Equal(model.ContainsKey(p), mapped);
            if (mapped) Assert.Equal(model[p], pa);
        }
        t.Unmap(0, 1UL << 39); // covers everything below the root
        Assert.Equal(1, t.TablePages);
        Assert.Equal(1, frames.TableFramesInUse);
    }
}
