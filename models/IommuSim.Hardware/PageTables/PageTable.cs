namespace IommuSim.Hardware.PageTables;

/// <summary>
/// A multi-level page table written as real 8-byte entries into <see cref="ITableMemory"/>:
/// the software side (what a kernel driver or guest driver does), used to build and edit tables
/// that the hardware page walker then reads. Maps with the largest leaf that alignment and
/// <c>maxPageSize</c> allow, and on unmap frees the tables the range covers entirely (as the VT-d driver does).
/// </summary>
public sealed class PageTable
{
    private readonly ITableMemory _mem;
    private static readonly PageSize[] LargeLeaves = [PageSize.Size1G, PageSize.Size2M];

    public PageTable(ITableMemory memory, TableStage stage, int levels)
    {
        if (levels is < 3 or > 5) throw new ArgumentOutOfRangeException(nameof(levels), levels, "levels must be 3, 4 or 5");
        if (stage == TableStage.First && levels == 3) throw new ArgumentOutOfRangeException(nameof(levels), levels, "first-stage tables have 4 or 5 levels");
        _mem = memory;
        Stage = stage;
        Levels = levels;
        RootAddress = memory.AllocateTablePage();
        TablePages = 1;
    }

    public TableStage Stage { get; }
    public int Levels { get; }
    public ulong RootAddress { get; }
    public int AddressWidth => PageTableFormat.AddressWidth(Levels);
    public ulong MaxAddress => (1UL << AddressWidth) - 1;

    /// <summary>Table pages currently allocated (root included).</summary>
    public long TablePages { get; private set; }

    /// <summary>Lower tables that maps of large leaves replaced (each needs an IOTLB and paging-structure flush).</summary>
    public long TablesFreedByMap { get; private set; }

    /// <summary>Bytes currently mapped.</summary>
    public ulong MappedBytes { get; private set; }

    /// <summary>
    /// Maps [iova, iova+length) to [pa, pa+length) with <paramref name="access"/>. Uses leaves up to
    /// <paramref name="maxPageSize"/> where both addresses are aligned. Throws
    /// <see cref="InvalidOperationException"/> if any page is already mapped (the table is then
    /// left with the pages mapped before the conflict removed again).
    /// </summary>
    public void Map(ulong iova, ulong pa, ulong length, Access access, PageSize maxPageSize = PageSize.Size1G)
    {
        Check(iova, length);
        if ((pa & 0xFFF) != 0) throw new ArgumentException($"pa 0x{pa:x} is not 4 KiB aligned", nameof(pa));
        if (access == Access.None) throw new ArgumentException("a mapping needs read or write access", nameof(access));
        ulong done = 0;
        try
        {
            while (done < length)
            {
                ulong va = iova + done, p = pa + done, left = length - done;
                PageSize size = PageSize.Size4K;
                foreach (var s in LargeLeaves)
                {
                    ulong b = s.Bytes();
                    if (s <= maxPageSize && s.LeafLevel() < Levels && (va & (b - 1)) == 0 && (p & (b - 1)) == 0 && left >= b)
                    {
                        size = s;
                        break;
                    }
                }
                MapOne(va, p, size, access);
                done += size.Bytes();
            }
            MappedBytes += length;
        }
        catch
        {
            if (done > 0) UnmapRange(iova, done);
            throw;
        }
    }

    /// <summary>
    /// Removes every leaf in [iova, iova+length); a large leaf that straddles either end is an
    /// error (<see cref="InvalidOperationException"/>) and nothing is changed. Returns the bytes
    /// that were mapped. Tables the range covers entirely are freed; a table it only empties stays.
    /// </summary>
    public ulong Unmap(ulong iova, ulong length)
    {
        Check(iova, length);
        // Refuse to cut a large leaf, as the VT-d driver does for an unaligned unmap.
        CheckEdge(iova);
        CheckEdge(iova + length);
        ulong removed = UnmapRange(iova, length);
        MappedBytes -= removed;
        return removed;
    }

    private void CheckEdge(ulong edge)
    {
        if (edge > MaxAddress) return;
        if (TryTranslate(edge, out _, out _, out var sz) && (edge & (sz.Bytes() - 1)) != 0)
            throw new InvalidOperationException($"unmap edge 0x{edge:x} falls inside a {sz.Label()} page");
    }

    /// <summary>Software walk: the output address for <paramref name="iova"/>.</summary>
    public bool TryTranslate(ulong iova, out ulong pa, out Access access, out PageSize size)
    {
        pa = 0; access = Access.None; size = PageSize.Size4K;
        if (iova > MaxAddress) return false;
        ulong table = RootAddress;
        for (int level = Levels; level >= 1; level--)
        {
            ulong e = _mem.ReadEntry(table + 8UL * (ulong)PageTableFormat.IndexAt(iova, level));
            if (!PageTableFormat.IsPresent(Stage, e)) return false;
            if (PageTableFormat.IsLeaf(Stage, e, level))
            {
                size = PageSizes.FromLeafLevel(level);
                ulong mask = size.Bytes() - 1;
                pa = (e & PageTableFormat.AddressMask & ~mask) | (iova & mask);
                access = PageTableFormat.Permissions(Stage, e);
                return true;
            }
            table = e & PageTableFormat.AddressMask;
        }
        return false;
    }

    /// <summary>Address of the leaf entry for <paramref name="iova"/>, or null when not mapped.</summary>
    public ulong? LeafEntryAddress(ulong iova)
    {
        if (iova > MaxAddress) return null;
        ulong table = RootAddress;
        for (int level = Levels; level >= 1; level--)
        {
            ulong ea = table + 8UL * (ulong)PageTableFormat.IndexAt(iova, level);
            ulong e = _mem.ReadEntry(ea);
            if (!PageTableFormat.IsPresent(Stage, e)) return null;
            if (PageTableFormat.IsLeaf(Stage, e, level)) return ea;
            table = e & PageTableFormat.AddressMask;
        }
        return null;
    }

    /// <summary>Reads and optionally clears the dirty bit of the leaf mapping <paramref name="iova"/>.</summary>
    public bool TestDirty(ulong iova, bool clear)
    {
        if (LeafEntryAddress(iova) is not ulong ea) return false;
        ulong e = _mem.ReadEntry(ea);
        ulong d = PageTableFormat.DirtyBit(Stage);
        if ((e & d) == 0) return false;
        if (clear) _mem.WriteEntry(ea, e & ~d);
        return true;
    }

    /// <summary>Clears A/D bits of every leaf in the range (enabling dirty tracking starts clean).</summary>
    public void ClearDirty(ulong iova, ulong length)
    {
        ulong end = iova + length;
        ulong va = iova;
        while (va < end && va <= MaxAddress)
        {
            if (LeafEntryAddress(va) is ulong ea && TryTranslate(va, out _, out _, out var size))
            {
                ulong e = _mem.ReadEntry(ea);
                _mem.WriteEntry(ea, e & ~PageTableFormat.DirtyBit(Stage));
                va = (va & ~(size.Bytes() - 1)) + size.Bytes();
            }
            else va = (va & ~0xFFFUL) + 0x1000;
        }
    }

    private void Check(ulong iova, ulong length)
    {
        if (((iova | length) & 0xFFF) != 0) throw new ArgumentException($"range 0x{iova:x}+0x{length:x} is not 4 KiB aligned");
        if (length == 0) throw new ArgumentException("empty range");
        if (iova + length - 1 < iova || iova + length - 1 > MaxAddress)
            throw new ArgumentOutOfRangeException(nameof(iova), $"range 0x{iova:x}+0x{length:x} exceeds the {AddressWidth}-bit table");
    }

    private void MapOne(ulong va, ulong pa, PageSize size, Access access)
    {
        int leafLevel = size.LeafLevel();
        ulong table = RootAddress;
        for (int level = Levels; level > leafLevel; level--)
        {
            ulong ea = table + 8UL * (ulong)PageTableFormat.IndexAt(va, level);
            ulong e = _mem.ReadEntry(ea);
            if (!PageTableFormat.IsPresent(Stage, e))
            {
                ulong next = _mem.AllocateTablePage();
                TablePages++;
                _mem.WriteEntry(ea, PageTableFormat.MakeTableEntry(Stage, next));
                table = next;
            }
            else if (PageTableFormat.IsLeaf(Stage, e, level))
            {
                throw new InvalidOperationException($"0x{va:x} is already mapped by a {PageSizes.FromLeafLevel(level).Label()} page");
            }
            else table = e & PageTableFormat.AddressMask;
        }
        ulong leaf = table + 8UL * (ulong)PageTableFormat.IndexAt(va, leafLevel);
        ulong old = _mem.ReadEntry(leaf);
        if (PageTableFormat.IsPresent(Stage, old))
        {
            // A large leaf over an emptied lower table replaces it, as __domain_mapping frees "old small
            // page tables ... to make room for superpage(s)"; the caller must then flush (TablesFreedByMap).
            if (leafLevel == 1 || PageTableFormat.IsLeaf(Stage, old, leafLevel) || MappedIn(old & PageTableFormat.AddressMask, leafLevel - 1) != 0)
                throw new InvalidOperationException($"0x{va:x} is already mapped");
            FreeTree(old & PageTableFormat.AddressMask, leafLevel - 1);
            TablesFreedByMap++;
        }
        _mem.WriteEntry(leaf, PageTableFormat.MakeLeafEntry(Stage, pa, access, leafLevel));
    }

    /// <summary>Removes leaves in the range; returns bytes removed. Frees the tables it covers entirely.</summary>
    private ulong UnmapRange(ulong iova, ulong length) => UnmapIn(RootAddress, Levels, iova, iova + length - 1, 0);

    private ulong UnmapIn(ulong table, int level, ulong first, ulong last, ulong tableBase)
    {
        ulong removed = 0;
        int shift = PageTableFormat.IndexShift(level);
        ulong span = 1UL << shift;
        int lo = PageTableFormat.IndexAt(Math.Max(first, tableBase), level);
        ulong tableLast = tableBase + (span << 9) - 1;
        if (level == Levels) tableLast = MaxAddress;
        int hi = PageTableFormat.IndexAt(Math.Min(last, tableLast), level);
        for (int i = lo; i <= hi; i++)
        {
            ulong ea = table + 8UL * (ulong)i;
            ulong e = _mem.ReadEntry(ea);
            if (!PageTableFormat.IsPresent(Stage, e)) continue;
            ulong entryBase = tableBase + (ulong)i * span;
            if (PageTableFormat.IsLeaf(Stage, e, level))
            {
                _mem.WriteEntry(ea, 0);
                removed += span;
                continue;
            }
            ulong child = e & PageTableFormat.AddressMask;
            // As the VT-d driver's dma_pte_clear_level: a lower-level table is freed only when the range
            // covers all of it; a table that the range merely empties stays (and stays cached).
            bool covered = first <= entryBase && last >= entryBase + span - 1;
            removed += covered ? MappedIn(child, level - 1) : UnmapIn(child, level - 1, first, last, entryBase);
            if (covered)
            {
                _mem.WriteEntry(ea, 0);
                FreeTree(child, level - 1);
            }
        }
        return removed;
    }

    /// <summary>Bytes mapped under <paramref name="table"/> (a table of <paramref name="level"/>).</summary>
    private ulong MappedIn(ulong table, int level)
    {
        ulong bytes = 0, span = 1UL << PageTableFormat.IndexShift(level);
        for (int i = 0; i < 512; i++)
        {
            ulong e = _mem.ReadEntry(table + 8UL * (ulong)i);
            if (!PageTableFormat.IsPresent(Stage, e)) continue;
            bytes += PageTableFormat.IsLeaf(Stage, e, level) ? span : MappedIn(e & PageTableFormat.AddressMask, level - 1);
        }
        return bytes;
    }

    /// <summary>Frees <paramref name="table"/> and every table below it (dma_pte_list_pagetables).</summary>
    private void FreeTree(ulong table, int level)
    {
        if (level > 1)
            for (int i = 0; i < 512; i++)
            {
                ulong e = _mem.ReadEntry(table + 8UL * (ulong)i);
                if (PageTableFormat.IsPresent(Stage, e) && !PageTableFormat.IsLeaf(Stage, e, level)) FreeTree(e & PageTableFormat.AddressMask, level - 1);
            }
        _mem.FreeTablePage(table);
        TablePages--;
    }
}
