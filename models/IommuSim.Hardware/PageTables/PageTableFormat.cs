namespace IommuSim.Hardware.PageTables;

/// <summary>Which entry format a table uses.</summary>
public enum TableStage : byte
{
    /// <summary>First stage: x86-64 (IA-32e) format, IOVA/GVA → (G)PA.</summary>
    First = 1,
    /// <summary>Second stage: VT-d second-stage format, (G)PA → HPA.</summary>
    Second = 2,
}

/// <summary>
/// Bit layouts of 8-byte page-table entries. First stage (IA-32e): P(0) R/W(1) U/S(2) PWT(3)
/// PCD(4) A(5) D(6) PS(7) address(12-51) XD(63). Second stage (VT-d): R(0) W(1) X(2) EMT(3-5)
/// IPAT(6) PS(7) A(8) D(9) address(12-51). A second-stage entry is present when R or W is set.
/// </summary>
public static class PageTableFormat
{
    public const ulong AddressMask = 0x000F_FFFF_FFFF_F000UL;

    public const ulong S1Present = 1UL << 0;
    public const ulong S1Writable = 1UL << 1;
    public const ulong S1User = 1UL << 2;
    public const ulong S1Accessed = 1UL << 5;
    public const ulong S1Dirty = 1UL << 6;
    public const ulong S1PageSize = 1UL << 7;
    public const ulong S1ExecuteDisable = 1UL << 63;

    public const ulong S2Read = 1UL << 0;
    public const ulong S2Write = 1UL << 1;
    public const ulong S2Execute = 1UL << 2;
    public const ulong S2MemTypeWriteBack = 6UL << 3;
    public const ulong S2PageSize = 1UL << 7;
    public const ulong S2Accessed = 1UL << 8;
    public const ulong S2Dirty = 1UL << 9;

    /// <summary>Bits of the input address a table level indexes (level 1 = PTE ... 5 = PML5E).</summary>
    public static int IndexShift(int level) => 12 + 9 * (level - 1);

    public static int IndexAt(ulong address, int level) => (int)((address >> IndexShift(level)) & 511);

    /// <summary>Input address width of an n-level table: 39, 48 or 57 bits.</summary>
    public static int AddressWidth(int levels) => 12 + 9 * levels;

    public static bool IsPresent(TableStage stage, ulong e)
        => stage == TableStage.First ? (e & S1Present) != 0 : (e & (S2Read | S2Write)) != 0;

    /// <summary>True when the entry is a leaf at <paramref name="level"/> (PTE, or PS set at 2M/1G).</summary>
    public static bool IsLeaf(TableStage stage, ulong e, int level)
        => level == 1 || (level <= 3 && (e & (stage == TableStage.First ? S1PageSize : S2PageSize)) != 0);

    public static Access Permissions(TableStage stage, ulong e) => stage == TableStage.First
        ? ((e & S1Present) != 0 ? Access.Read : Access.None) | ((e & S1Writable) != 0 ? Access.Write : Access.None)
        : ((e & S2Read) != 0 ? Access.Read : Access.None) | ((e & S2Write) != 0 ? Access.Write : Access.None);

    /// <summary>A non-leaf entry pointing at the next table, with full rights (rights are checked at the leaf).</summary>
    public static ulong MakeTableEntry(TableStage stage, ulong tablePa) => stage == TableStage.First
        ? (tablePa & AddressMask) | S1Present | S1Writable | S1User
        : (tablePa & AddressMask) | S2Read | S2Write | S2Execute;

    public static ulong MakeLeafEntry(TableStage stage, ulong pa, Access access, int level)
    {
        if (stage == TableStage.First)
        {
            // First-stage entries have no "write-only": a present entry is always readable.
            ulong e = (pa & AddressMask) | S1Present | S1User | S1ExecuteDisable;
            if ((access & Access.Write) != 0) e |= S1Writable;
            if (level > 1) e |= S1PageSize;
            return e;
        }
        else
        {
            ulong e = (pa & AddressMask) | S2MemTypeWriteBack;
            if ((access & Access.Read) != 0) e |= S2Read;
            if ((access & Access.Write) != 0) e |= S2Write;
            if (level > 1) e |= S2PageSize;
            return e;
        }
    }

    public static ulong DirtyBit(TableStage stage) => stage == TableStage.First ? S1Dirty : S2Dirty;
    public static ulong AccessedBit(TableStage stage) => stage == TableStage.First ? S1Accessed : S2Accessed;
}
