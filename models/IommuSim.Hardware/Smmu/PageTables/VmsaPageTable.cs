using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Smmu.PageTables;

/// <summary>
/// A VMSAv8-64 translation table in simulated memory, built and edited the way io-pgtable-arm
/// does for the arm-smmu-v3 driver: stage 1 (CD.TTB0, ASID-tagged) or stage 2 (STE.S2TTB,
/// VMID-tagged), any granule, an input size of up to 48 bits, and for stage 2 an optional lower
/// start level with concatenated tables. Leaves are pages or blocks where the range and the
/// granule allow. The hardware walks it through <see cref="Walk.SmmuWalker"/>.
/// </summary>
public sealed class VmsaPageTable
{
    private readonly ISmmuTableMemory _memory;

    public VmsaPageTable(ISmmuTableMemory memory, SmmuStage stage, Granule granule, int inputBits, int? startLevel = null,
        bool dirtyBitModifier = false)
    {
        int start = startLevel ?? granule.StartLevel(inputBits);
        if (granule.CheckGeometry(inputBits, start, stage == SmmuStage.Stage2) is string error)
            throw new ArgumentException($"VMSAv8-64 {stage} table, {granule.Label()} granule: {error}");
        _memory = memory;
        Stage = stage;
        Granule = granule;
        InputBits = inputBits;
        StartLevel = start;
        DirtyBitModifier = dirtyBitModifier;
        Root = memory.AllocateTable(TableBytes(start));
    }

    public SmmuStage Stage { get; }
    public Granule Granule { get; }
    public int InputBits { get; }
    public int StartLevel { get; }
    public int Levels => Granules.Levels(StartLevel);
    /// <summary>Writable leaves are written writable-clean (DBM) so hardware dirty tracking sees writes.</summary>
    public bool DirtyBitModifier { get; }
    /// <summary>Address of the start-level table (TTB0 / S2TTB).</summary>
    public ulong Root { get; }
    public long TablesAllocated { get; private set; } = 1;

    private ulong TableBytes(int level) => 8UL << Granule.IndexBits(level, StartLevel, InputBits);

    private ulong EntryAddress(ulong table, ulong address, int level)
        => table + 8UL * (ulong)Granule.IndexAt(address, level, StartLevel, InputBits);

    /// <summary>Maps [iova, iova + bytes) to [pa, pa + bytes) with the largest leaves alignment allows
    /// (<paramref name="maxLeafShift"/> caps them). Overwrites nothing: a present leaf in the way throws.</summary>
    public void Map(ulong iova, ulong pa, ulong bytes, Access access, int maxLeafShift = 63)
    {
        ulong granule = Granule.Bytes();
        if (((iova | pa | bytes) & (granule - 1)) != 0)
            throw new ArgumentException($"map of 0x{bytes:x} bytes at 0x{iova:x} → 0x{pa:x} is not {Granule.Label()} aligned");
        if (bytes == 0 || iova + bytes - 1 > MaxInput || iova + bytes < iova)
            throw new ArgumentException($"map [0x{iova:x}, +0x{bytes:x}) is outside the {InputBits}-bit input range");
        ulong done = 0;
        while (done < bytes)
        {
            ulong va = iova + done, oa = pa + done;
            int level = 3;
            for (int l = StartLevel; l < 3; l++)
            {
                int shift = Granule.LeafShift(l);
                ulong size = 1UL << shift;
                if (Granule.LeafAllowed(l) && shift <= maxLeafShift && ((va | oa) & (size - 1)) == 0 && bytes - done >= size)
                {
                    level = l;
                    break;
                }
            }
            ulong entry = Descend(va, level, allocate: true);
            if (VmsaDescriptor.IsValid(_memory.ReadU64(entry)))
                throw new InvalidOperationException($"0x{va:x} is already mapped");
            _memory.WriteU64(entry, VmsaDescriptor.MakeLeaf(Stage, oa, access, level, DirtyBitModifier));
            done += 1UL << Granule.LeafShift(level);
        }
    }

    /// <summary>Clears the leaves of [iova, iova + bytes); returns the bytes that were mapped. A block only
    /// partly inside the range is not split (io-pgtable-arm splits; the iommufd layers above never ask for it).</summary>
    public ulong Unmap(ulong iova, ulong bytes)
    {
        ulong cleared = 0, va = iova, end = iova + bytes;
        while (va < end)
        {
            var (entry, level) = FindLeaf(va);
            ulong size = 1UL << Granule.LeafShift(Math.Max(level, StartLevel));
            if (entry == 0)
            {
                va = (va & ~(size - 1)) + size;
                continue;
            }
            if ((va & (size - 1)) != 0 || end - va < size)
                throw new InvalidOperationException($"unmap of [0x{iova:x}, 0x{end:x}) would split the {size >> 10} KiB leaf at 0x{va & ~(size - 1):x}");
            _memory.WriteU64(entry, 0);
            cleared += size;
            va += size;
        }
        return cleared;
    }

    public ulong MaxInput => (1UL << InputBits) - 1;

    /// <summary>The functional translation: output address and rights, or null when unmapped.</summary>
    public (ulong Output, Access Access, int LeafShift)? Translate(ulong iova)
    {
        if (iova > MaxInput) return null;
        var (entry, level) = FindLeaf(iova);
        if (entry == 0) return null;
        ulong d = _memory.ReadU64(entry);
        int shift = Granule.LeafShift(level);
        return (VmsaDescriptor.LeafBase(d, shift) | (iova & ((1UL << shift) - 1)), VmsaDescriptor.Permissions(Stage, d, DirtyBitModifier), shift);
    }

    /// <summary>Address of the leaf descriptor mapping <paramref name="iova"/> (0 when none) and its level;
    /// for no leaf, the level of the first invalid entry.</summary>
    public (ulong Entry, int Level) FindLeaf(ulong iova)
    {
        ulong table = Root;
        for (int level = StartLevel; level <= 3; level++)
        {
            ulong entry = EntryAddress(table, iova, level);
            ulong d = _memory.ReadU64(entry);
            if (!VmsaDescriptor.IsValid(d)) return (0, level);
            if (VmsaDescriptor.IsLeaf(d, level)) return (entry, level);
            table = VmsaDescriptor.TableAddress(d, Granule);
        }
        return (0, 3);
    }

    /// <summary>Reads and clears the dirty state of the leaf mapping <paramref name="iova"/> (HTTU dirty tracking).</summary>
    public bool ReadAndClearDirty(ulong iova)
    {
        var (entry, _) = FindLeaf(iova);
        if (entry == 0) return false;
        ulong d = _memory.ReadU64(entry);
        if ((d & VmsaDescriptor.DirtyBitModifier) == 0 || !VmsaDescriptor.IsDirty(Stage, d)) return false;
        _memory.WriteU64(entry, VmsaDescriptor.ClearDirty(Stage, d));
        return true;
    }

    /// <summary>The entry at <paramref name="level"/> on the path to <paramref name="va"/>, creating tables on the way.</summary>
    private ulong Descend(ulong va, int level, bool allocate)
    {
        ulong table = Root;
        for (int l = StartLevel; l < level; l++)
        {
            ulong entry = EntryAddress(table, va, l);
            ulong d = _memory.ReadU64(entry);
            if (!VmsaDescriptor.IsValid(d))
            {
                if (!allocate) return 0;
                ulong next = _memory.AllocateTable(TableBytes(l + 1));
                TablesAllocated++;
                _memory.WriteU64(entry, VmsaDescriptor.MakeTable(next));
                table = next;
                continue;
            }
            if (VmsaDescriptor.IsLeaf(d, l)) throw new InvalidOperationException($"0x{va:x} lies inside a block mapped at level {l}");
            table = VmsaDescriptor.TableAddress(d, Granule);
        }
        return EntryAddress(table, va, level);
    }
}
