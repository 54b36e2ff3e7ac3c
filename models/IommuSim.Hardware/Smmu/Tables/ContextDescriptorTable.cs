using IommuSim.Hardware.Smmu.PageTables;

namespace IommuSim.Hardware.Smmu.Tables;

/// <summary>
/// A stream's table of Context Descriptors, indexed by SubstreamID (SMMUv3 §3.4.1, STE.S1Fmt):
/// linear (2^S1CDMax CDs) or two-level (8-byte L1CD descriptors, V[0] L2Ptr[51:12], each pointing
/// at a leaf of 64 CDs (S1Fmt = 1, 4 KiB leaves) or 1024 CDs (S1Fmt = 2, 64 KiB leaves)). Under
/// nested translation the table lives in guest memory and its addresses are IPAs: the memory
/// given is then the guest's view.
/// </summary>
public sealed class ContextDescriptorTable
{
    private readonly ISmmuTableMemory _memory;
    private readonly ulong[] _scratch = new ulong[8];

    /// <param name="s1Fmt">0 linear, 1 two-level with 4 KiB leaves, 2 two-level with 64 KiB leaves.</param>
    public ContextDescriptorTable(ISmmuTableMemory memory, int s1CdMax, byte s1Fmt = 0)
    {
        if (s1CdMax < 0 || s1CdMax > 20) throw new ArgumentOutOfRangeException(nameof(s1CdMax), "S1CDMax is 0..20");
        if (s1Fmt > 2) throw new ArgumentOutOfRangeException(nameof(s1Fmt), "S1Fmt is 0, 1 or 2");
        _memory = memory;
        S1CdMax = s1CdMax;
        S1Fmt = s1CdMax <= LeafBits(s1Fmt) ? (byte)0 : s1Fmt;
        ulong bytes = S1Fmt == 0 ? (ulong)ContextDescriptor.Bytes << s1CdMax : 8UL << (s1CdMax - LeafBits(S1Fmt));
        Base = memory.AllocateTable(Math.Max(64, bytes));
    }

    public int S1CdMax { get; }
    public byte S1Fmt { get; }
    /// <summary>STE.S1ContextPtr.</summary>
    public ulong Base { get; }

    private static int LeafBits(byte fmt) => fmt == 2 ? 10 : 6;

    public bool InRange(uint ssid) => ssid < 1UL << S1CdMax;

    public void Install(uint ssid, in ContextDescriptor cd)
    {
        if (!InRange(ssid)) throw new ArgumentOutOfRangeException(nameof(ssid), $"SubstreamID {ssid} is beyond S1CDMax {S1CdMax}");
        ulong address = EnsureCdAddress(ssid);
        cd.Encode(_scratch);
        for (int i = 7; i >= 0; i--) _memory.WriteU64(address + 8UL * (ulong)i, _scratch[i]);
    }

    /// <summary>Clears the CD (V = 0), as arm_smmu_clear_cd does when a PASID is detached.</summary>
    public void Clear(uint ssid)
    {
        var (address, _) = Locate(_memory, Base, S1Fmt, ssid);
        if (address is ulong a) _memory.WriteU64(a, 0);
    }

    public ContextDescriptor Read(uint ssid)
    {
        var (address, _) = Locate(_memory, Base, S1Fmt, ssid);
        return address is ulong a ? ReadCd(_memory, a) : default;
    }

    /// <summary>The hardware's lookup from an STE: the CD's address (null when its L1CD is invalid) and the
    /// dependent reads it took. Addresses are in the table's address space (IPAs under nesting).</summary>
    public static (ulong? CdAddress, int Reads) Locate(ISmmuTableMemory memory, ulong basePtr, byte s1Fmt, uint ssid)
    {
        if (s1Fmt == 0) return (basePtr + (ulong)ContextDescriptor.Bytes * ssid, 1);
        int bits = LeafBits(s1Fmt);
        ulong l1 = memory.ReadU64(basePtr + 8UL * (ssid >> bits));
        if ((l1 & 1) == 0) return (null, 1);
        return ((l1 & 0x000F_FFFF_FFFF_F000UL) + (ulong)ContextDescriptor.Bytes * (ssid & ((1u << bits) - 1)), 2);
    }

    /// <summary>The L1CD address for <paramref name="ssid"/> (two-level tables), which the hardware reads first.</summary>
    public static ulong L1DescriptorAddress(ulong basePtr, byte s1Fmt, uint ssid) => basePtr + 8UL * (ssid >> LeafBits(s1Fmt));

    public static ContextDescriptor ReadCd(ISmmuTableMemory memory, ulong address)
    {
        Span<ulong> d = stackalloc ulong[8];
        for (int i = 0; i < 8; i++) d[i] = memory.ReadU64(address + 8UL * (ulong)i);
        return ContextDescriptor.Decode(d);
    }

    private ulong EnsureCdAddress(uint ssid)
    {
        if (S1Fmt == 0) return Base + (ulong)ContextDescriptor.Bytes * ssid;
        int bits = LeafBits(S1Fmt);
        ulong l1Address = Base + 8UL * (ssid >> bits);
        ulong l1 = _memory.ReadU64(l1Address);
        if ((l1 & 1) == 0)
        {
            ulong leaf = _memory.AllocateTable((ulong)ContextDescriptor.Bytes << bits);
            l1 = leaf | 1;
            _memory.WriteU64(l1Address, l1);
        }
        return (l1 & 0x000F_FFFF_FFFF_F000UL) + (ulong)ContextDescriptor.Bytes * (ssid & ((1u << bits) - 1));
    }
}
