using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Smmu.PageTables;

/// <summary>Which translation regime a descriptor belongs to (their permission bits differ).</summary>
public enum SmmuStage : byte
{
    Stage1 = 1,
    Stage2 = 2,
}

/// <summary>
/// VMSAv8-64 translation-table descriptors (Arm ARM D8.3, 48-bit output). Bits[1:0]: 0b11 table
/// (levels 0–2) or page (level 3), 0b01 block. Lower attributes: stage 1 AttrIndx[4:2] AP[7:6]
/// (AP[2] = bit 7: read-only) SH[9:8] AF[10] nG[11]; stage 2 MemAttr[5:2] S2AP[7:6] (bit 6 read,
/// bit 7 write) SH[9:8] AF[10]. Upper: DBM[51] Contiguous[52] PXN/XN[54:53]. With hardware dirty
/// state (CD.HD / STE.S2HD) a DBM entry is "writable-clean": stage 1 keeps AP[2] = 1 until the first
/// write clears it; stage 2 keeps S2AP[1] = 0 until the first write sets it.
/// </summary>
public static class VmsaDescriptor
{
    public const ulong Valid = 1UL << 0;
    public const ulong TableOrPage = 1UL << 1;
    public const ulong OutputMask = 0x0000_FFFF_FFFF_F000UL;
    public const ulong AccessFlag = 1UL << 10;
    public const ulong NotGlobal = 1UL << 11;
    public const ulong InnerShareable = 3UL << 8;
    public const ulong DirtyBitModifier = 1UL << 51;
    public const ulong ExecuteNever = 1UL << 54;

    /// <summary>Stage 1 AP[2]: read-only.</summary>
    public const ulong S1ReadOnly = 1UL << 7;
    /// <summary>Stage 1 AP[1]: accessible at EL0 (devices issue unprivileged accesses).</summary>
    public const ulong S1Unprivileged = 1UL << 6;
    /// <summary>Stage 1 AttrIndx = 1 (normal write-back memory in Linux's MAIR).</summary>
    public const ulong S1AttrNormal = 1UL << 2;
    public const ulong S2Read = 1UL << 6;
    public const ulong S2Write = 1UL << 7;
    /// <summary>Stage 2 MemAttr = 0b1111 (normal, inner/outer write-back).</summary>
    public const ulong S2MemAttrNormal = 0xFUL << 2;

    public static bool IsValid(ulong d) => (d & Valid) != 0;

    /// <summary>True when <paramref name="d"/> (valid) is a leaf at <paramref name="level"/>: a page at level 3 or a block above.</summary>
    public static bool IsLeaf(ulong d, int level) => level == 3 || (d & TableOrPage) == 0;

    /// <summary>Next-level table address (granule aligned).</summary>
    public static ulong TableAddress(ulong d, Granule g) => d & OutputMask & ~(g.Bytes() - 1);

    /// <summary>Output address of a leaf covering 2^<paramref name="leafShift"/> bytes.</summary>
    public static ulong LeafBase(ulong d, int leafShift) => d & OutputMask & ~((1UL << leafShift) - 1);

    public static ulong MakeTable(ulong tableAddress) => (tableAddress & OutputMask) | TableOrPage | Valid;

    /// <summary>A leaf with the access flag set; <paramref name="dbm"/> makes a writable leaf writable-clean.</summary>
    public static ulong MakeLeaf(SmmuStage stage, ulong outputAddress, Access access, int level, bool dbm = false)
    {
        ulong d = (outputAddress & OutputMask) | Valid | AccessFlag | InnerShareable | (level == 3 ? TableOrPage : 0);
        bool write = (access & Access.Write) != 0;
        if (stage == SmmuStage.Stage1)
        {
            d |= S1AttrNormal | S1Unprivileged | NotGlobal | ExecuteNever;
            if (!write || dbm) d |= S1ReadOnly;
        }
        else
        {
            d |= S2MemAttrNormal | ExecuteNever;
            if ((access & Access.Read) != 0) d |= S2Read;
            if (write && !dbm) d |= S2Write;
        }
        if (write && dbm) d |= DirtyBitModifier;
        return d;
    }

    /// <summary>Access rights of a leaf; with <paramref name="hardwareDirty"/>, a DBM leaf is writable.</summary>
    public static Access Permissions(SmmuStage stage, ulong d, bool hardwareDirty)
    {
        bool dbm = hardwareDirty && (d & DirtyBitModifier) != 0;
        if (stage == SmmuStage.Stage1)
            return Access.Read | ((d & S1ReadOnly) == 0 || dbm ? Access.Write : Access.None);
        return ((d & S2Read) != 0 ? Access.Read : Access.None) | ((d & S2Write) != 0 || dbm ? Access.Write : Access.None);
    }

    /// <summary>True when the leaf records a write (stage 1: AP[2] clear; stage 2: S2AP[1] set).</summary>
    public static bool IsDirty(SmmuStage stage, ulong d)
        => stage == SmmuStage.Stage1 ? (d & S1ReadOnly) == 0 : (d & S2Write) != 0;

    /// <summary>The leaf after hardware records a write to a writable-clean entry (HTTU).</summary>
    public static ulong MarkDirty(SmmuStage stage, ulong d)
        => (stage == SmmuStage.Stage1 ? d & ~S1ReadOnly : d | S2Write) | AccessFlag;

    /// <summary>Software clears the dirty state again (writable-clean), as iommufd's read-and-clear does.</summary>
    public static ulong ClearDirty(SmmuStage stage, ulong d)
        => stage == SmmuStage.Stage1 ? d | S1ReadOnly : d & ~S2Write;
}
