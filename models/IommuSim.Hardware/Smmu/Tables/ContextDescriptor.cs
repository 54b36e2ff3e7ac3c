using IommuSim.Hardware.Smmu.PageTables;

namespace IommuSim.Hardware.Smmu.Tables;

/// <summary>
/// A Context Descriptor (SMMUv3 spec §5.4, 64 bytes): one stage-1 address space, selected by
/// SubstreamID (= PASID). dword0: T0SZ[5:0] TG0[7:6] EPD0[14] EPD1[30] V[31] IPS[34:32] AA64[41]
/// HD[42] HA[43] S[44] R[45] A[46] ASID[63:48]; dword1: TTB0[51:4]; dword3: MAIR0.
/// </summary>
public readonly record struct ContextDescriptor
{
    public bool Valid { get; init; }
    public byte T0Sz { get; init; }
    public Granule Tg0 { get; init; }
    /// <summary>EPD0: walks of TTB0 are disabled (a translation fault).</summary>
    public bool Epd0 { get; init; }
    /// <summary>IPS: intermediate physical size encoding (5 = 48 bits).</summary>
    public byte Ips { get; init; }
    public bool Aa64 { get; init; }
    public bool HardwareDirty { get; init; }
    public bool HardwareAccess { get; init; }
    /// <summary>CD.S: stall faults (they wait for a RESUME command) instead of terminating.</summary>
    public bool Stall { get; init; }
    /// <summary>CD.R: record faults in the event queue.</summary>
    public bool Record { get; init; }
    /// <summary>CD.A: abort (not ignore) faults.</summary>
    public bool Abort { get; init; }
    public ushort Asid { get; init; }
    public ulong Ttb0 { get; init; }
    public ulong Mair { get; init; }

    public const int Bytes = 64;

    public int InputBits => 64 - T0Sz;

    /// <summary>The stage-1 start level the input size implies.</summary>
    public int StartLevel => Tg0.StartLevel(InputBits);

    public void Encode(Span<ulong> d)
    {
        d[..8].Clear();
        d[0] = ((ulong)T0Sz & 63) | ((ulong)StreamTableEntry.EncodeTg(Tg0) << 6) | (Epd0 ? 1UL << 14 : 0) | (1UL << 30)
             | (Valid ? 1UL << 31 : 0) | (((ulong)Ips & 7) << 32) | (Aa64 ? 1UL << 41 : 0) | (HardwareDirty ? 1UL << 42 : 0)
             | (HardwareAccess ? 1UL << 43 : 0) | (Stall ? 1UL << 44 : 0) | (Record ? 1UL << 45 : 0) | (Abort ? 1UL << 46 : 0)
             | ((ulong)Asid << 48);
        d[1] = Ttb0 & 0x000F_FFFF_FFFF_FFF0UL;
        d[3] = Mair;
    }

    public static ContextDescriptor Decode(ReadOnlySpan<ulong> d) => new()
    {
        T0Sz = (byte)(d[0] & 63),
        Tg0 = StreamTableEntry.DecodeTg((d[0] >> 6) & 3),
        Epd0 = ((d[0] >> 14) & 1) != 0,
        Valid = ((d[0] >> 31) & 1) != 0,
        Ips = (byte)((d[0] >> 32) & 7),
        Aa64 = ((d[0] >> 41) & 1) != 0,
        HardwareDirty = ((d[0] >> 42) & 1) != 0,
        HardwareAccess = ((d[0] >> 43) & 1) != 0,
        Stall = ((d[0] >> 44) & 1) != 0,
        Record = ((d[0] >> 45) & 1) != 0,
        Abort = ((d[0] >> 46) & 1) != 0,
        Asid = (ushort)(d[0] >> 48),
        Ttb0 = d[1] & 0x000F_FFFF_FFFF_FFF0UL,
        Mair = d[3],
    };

    /// <summary>Why the SMMU would report C_BAD_CD for this (valid) descriptor, or null.</summary>
    public string? Illegal()
    {
        if (!Valid) return null;
        if (!Aa64) return "AA64 = 0 (AArch32 stage-1 tables are not supported)";
        return Tg0.CheckGeometry(InputBits, StartLevel, stage2: false) is string e ? $"T0SZ/TG0: {e}" : null;
    }
}
