using IommuSim.Hardware.Smmu.PageTables;

namespace IommuSim.Hardware.Smmu.Tables;

/// <summary>
/// The stream table in memory (SMMUv3 §3.3.1, §6.3.24 STRTAB_BASE / STRTAB_BASE_CFG): linear (an
/// array of 2^LOG2SIZE STEs) or two-level (an array of 8-byte L1 descriptors, SPAN[4:0] and
/// L2Ptr[51:6], each pointing at 2^(SPAN−1) STEs; SPLIT = 6, 8 or 10 StreamID bits per L2 table).
/// Software (the driver) installs STEs; the hardware locates one with one (linear) or two (L1
/// descriptor, then STE) dependent memory reads.
/// </summary>
public sealed class StreamTable
{
    private readonly ISmmuTableMemory _memory;
    private readonly ulong[] _scratch = new ulong[8];

    /// <param name="log2Size">StreamID bits (LOG2SIZE).</param>
    /// <param name="split">Two-level: StreamID bits an L2 table resolves (6, 8 or 10); null = linear.</param>
    public StreamTable(ISmmuTableMemory memory, int log2Size, int? split = null)
    {
        if (log2Size < 0 || log2Size > 32) throw new ArgumentOutOfRangeException(nameof(log2Size), "LOG2SIZE is 0..32");
        if (split is int s && s is not (6 or 8 or 10)) throw new ArgumentOutOfRangeException(nameof(split), "SPLIT is 6, 8 or 10");
        if (split is null && log2Size > 16) throw new ArgumentOutOfRangeException(nameof(log2Size), "a linear stream table of more than 2^16 STEs is not modelled; use two levels");
        _memory = memory;
        Log2Size = log2Size;
        Split = split is int sp && sp < log2Size ? sp : null;
        ulong bytes = Split is int l2 ? 8UL << (log2Size - l2) : (ulong)StreamTableEntry.Bytes << log2Size;
        Base = memory.AllocateTable(Math.Max(64, bytes));
    }

    public int Log2Size { get; }
    public int? Split { get; }
    public bool TwoLevel => Split is not null;
    /// <summary>STRTAB_BASE.ADDR.</summary>
    public ulong Base { get; }

    public bool InRange(uint sid) => Log2Size >= 32 || sid < (1UL << Log2Size);

    /// <summary>Writes the STE of <paramref name="sid"/>, creating its L2 table when needed (as
    /// arm_smmu_init_l2_strtab does).</summary>
    public void Install(uint sid, in StreamTableEntry ste)
    {
        if (!InRange(sid)) throw new ArgumentOutOfRangeException(nameof(sid), $"StreamID 0x{sid:x} is beyond LOG2SIZE {Log2Size}");
        ulong address = EnsureSteAddress(sid);
        ste.Encode(_scratch);
        // dword0 (with V) last, so the hardware never sees a half-written valid entry.
        for (int i = 7; i >= 0; i--) _memory.WriteU64(address + 8UL * (ulong)i, _scratch[i]);
    }

    public StreamTableEntry Read(uint sid)
    {
        var (address, _) = Locate(sid);
        return address is ulong a ? ReadSte(_memory, a) : default;
    }

    /// <summary>The hardware's lookup: the STE's address (null when the L1 descriptor is invalid) and
    /// the dependent memory reads it took.</summary>
    public (ulong? SteAddress, int Reads) Locate(uint sid)
    {
        if (Split is not int split) return (Base + (ulong)StreamTableEntry.Bytes * sid, 1);
        ulong l1 = _memory.ReadU64(Base + 8UL * (sid >> split));
        int span = (int)(l1 & 31);
        ulong l2 = l1 & 0x000F_FFFF_FFFF_FFC0UL;
        uint index = sid & ((1u << split) - 1);
        if (span == 0 || index >= 1u << (span - 1)) return (null, 1);
        return (l2 + (ulong)StreamTableEntry.Bytes * index, 2);
    }

    public static StreamTableEntry ReadSte(ISmmuTableMemory memory, ulong address)
    {
        Span<ulong> d = stackalloc ulong[8];
        for (int i = 0; i < 8; i++) d[i] = memory.ReadU64(address + 8UL * (ulong)i);
        return StreamTableEntry.Decode(d);
    }

    private ulong EnsureSteAddress(uint sid)
    {
        if (Split is not int split) return Base + (ulong)StreamTableEntry.Bytes * sid;
        ulong l1Address = Base + 8UL * (sid >> split);
        ulong l1 = _memory.ReadU64(l1Address);
        if ((l1 & 31) == 0)
        {
            ulong l2 = _memory.AllocateTable((ulong)StreamTableEntry.Bytes << split);
            l1 = l2 | (uint)(split + 1);
            _memory.WriteU64(l1Address, l1);
        }
        return (l1 & 0x000F_FFFF_FFFF_FFC0UL) + (ulong)StreamTableEntry.Bytes * (sid & ((1u << split) - 1));
    }
}
