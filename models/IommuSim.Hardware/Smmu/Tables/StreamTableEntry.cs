using IommuSim.Hardware.Smmu.PageTables;

namespace IommuSim.Hardware.Smmu.Tables;

/// <summary>STE.Config: what the SMMU does with a stream's transactions.</summary>
public enum SteConfig : byte
{
    Abort = 0b000,
    Bypass = 0b100,
    /// <summary>Stage 1 translates, stage 2 bypassed.</summary>
    Stage1 = 0b101,
    /// <summary>Stage 1 bypassed, stage 2 translates.</summary>
    Stage2 = 0b110,
    /// <summary>Both stages: the guest's stage 1 over the host's stage 2.</summary>
    Nested = 0b111,
}

/// <summary>
/// A Stream Table Entry (SMMUv3 spec §5.2, 64 bytes) with the fields this model uses.
/// dword0: V[0] Config[3:1] S1Fmt[5:4] S1ContextPtr[51:6] S1CDMax[63:59];
/// dword1: S1DSS[1:0] S1STALLD[27] EATS[29:28];
/// dword2: S2VMID[15:0] S2T0SZ[37:32] S2SL0[39:38] S2TG[47:46] S2PS[50:48] S2AA64[51] S2HD[55]
/// S2HA[56] S2S[57] S2R[58]; dword3: S2TTB[51:4].
/// </summary>
public readonly record struct StreamTableEntry
{
    public bool Valid { get; init; }
    public SteConfig Config { get; init; }
    /// <summary>CD table format: 0 linear, 1 two-level with 4 KiB leaves, 2 two-level with 64 KiB leaves.</summary>
    public byte S1Fmt { get; init; }
    /// <summary>Address of the CD table (an IPA when stage 2 translates).</summary>
    public ulong S1ContextPtr { get; init; }
    /// <summary>log2 of the number of CDs (0: one CD, no substreams).</summary>
    public byte S1CdMax { get; init; }
    /// <summary>S1DSS: 0 terminate, 1 bypass, 2 use substream 0 for transactions without a SubstreamID.</summary>
    public byte S1Dss { get; init; }
    public bool S1StallDisable { get; init; }
    /// <summary>EATS: 1 = ATS translation requests allowed.</summary>
    public byte Eats { get; init; }
    public ushort S2Vmid { get; init; }
    public byte S2T0Sz { get; init; }
    public byte S2Sl0 { get; init; }
    public Granule S2Granule { get; init; }
    /// <summary>S2PS: output size encoding (5 = 48 bits).</summary>
    public byte S2Ps { get; init; }
    public bool S2Aa64 { get; init; }
    public bool S2HardwareDirty { get; init; }
    public bool S2HardwareAccess { get; init; }
    /// <summary>S2S: stall stage-2 faults instead of terminating them.</summary>
    public bool S2Stall { get; init; }
    /// <summary>S2R: record stage-2 faults of stage-1 table walks.</summary>
    public bool S2Record { get; init; }
    public ulong S2Ttb { get; init; }

    public const int Bytes = 64;

    public int S2InputBits => 64 - S2T0Sz;

    /// <summary>The stage-2 start level S2SL0 names for the granule (SMMUv3 §5.2, STE.S2SL0).</summary>
    public int S2StartLevel => S2Granule == Granule.Size4K ? 2 - S2Sl0 : 3 - S2Sl0;

    /// <summary>The S2SL0 encoding of a start level.</summary>
    public static byte EncodeSl0(Granule g, int startLevel) => (byte)(g == Granule.Size4K ? 2 - startLevel : 3 - startLevel);

    public bool Stage1Enabled => Config is SteConfig.Stage1 or SteConfig.Nested;
    public bool Stage2Enabled => Config is SteConfig.Stage2 or SteConfig.Nested;

    public static byte EncodeTg(Granule g) => g switch { Granule.Size4K => 0, Granule.Size64K => 1, _ => 2 };

    public static Granule DecodeTg(ulong tg) => tg switch { 0 => Granule.Size4K, 1 => Granule.Size64K, _ => Granule.Size16K };

    public void Encode(Span<ulong> d)
    {
        d[..8].Clear();
        d[0] = (Valid ? 1UL : 0) | ((ulong)Config << 1) | (((ulong)S1Fmt & 3) << 4)
             | (S1ContextPtr & 0x000F_FFFF_FFFF_FFC0UL) | (((ulong)S1CdMax & 31) << 59);
        d[1] = ((ulong)S1Dss & 3) | (S1StallDisable ? 1UL << 27 : 0) | (((ulong)Eats & 3) << 28);
        d[2] = S2Vmid | (((ulong)S2T0Sz & 63) << 32) | (((ulong)S2Sl0 & 3) << 38) | ((ulong)EncodeTg(S2Granule) << 46)
             | (((ulong)S2Ps & 7) << 48) | (S2Aa64 ? 1UL << 51 : 0) | (S2HardwareDirty ? 1UL << 55 : 0)
             | (S2HardwareAccess ? 1UL << 56 : 0) | (S2Stall ? 1UL << 57 : 0) | (S2Record ? 1UL << 58 : 0);
        d[3] = S2Ttb & 0x000F_FFFF_FFFF_FFF0UL;
    }

    public static StreamTableEntry Decode(ReadOnlySpan<ulong> d) => new()
    {
        Valid = (d[0] & 1) != 0,
        Config = (SteConfig)((d[0] >> 1) & 7),
        S1Fmt = (byte)((d[0] >> 4) & 3),
        S1ContextPtr = d[0] & 0x000F_FFFF_FFFF_FFC0UL,
        S1CdMax = (byte)((d[0] >> 59) & 31),
        S1Dss = (byte)(d[1] & 3),
        S1StallDisable = ((d[1] >> 27) & 1) != 0,
        Eats = (byte)((d[1] >> 28) & 3),
        S2Vmid = (ushort)d[2],
        S2T0Sz = (byte)((d[2] >> 32) & 63),
        S2Sl0 = (byte)((d[2] >> 38) & 3),
        S2Granule = DecodeTg((d[2] >> 46) & 3),
        S2Ps = (byte)((d[2] >> 48) & 7),
        S2Aa64 = ((d[2] >> 51) & 1) != 0,
        S2HardwareDirty = ((d[2] >> 55) & 1) != 0,
        S2HardwareAccess = ((d[2] >> 56) & 1) != 0,
        S2Stall = ((d[2] >> 57) & 1) != 0,
        S2Record = ((d[2] >> 58) & 1) != 0,
        S2Ttb = d[3] & 0x000F_FFFF_FFFF_FFF0UL,
    };

    /// <summary>Why the SMMU would report C_BAD_STE for this (valid) entry, or null when it is well formed.</summary>
    public string? Illegal()
    {
        if (!Valid) return null;
        if (Config is not (SteConfig.Abort or SteConfig.Bypass or SteConfig.Stage1 or SteConfig.Stage2 or SteConfig.Nested))
            return $"reserved Config 0b{Convert.ToString((int)Config, 2)}";
        if (Stage2Enabled)
        {
            if (!S2Aa64) return "S2AA64 = 0 (AArch32 stage-2 tables are not supported)";
            if (S2Granule.CheckGeometry(S2InputBits, S2StartLevel, stage2: true) is string e) return $"S2T0SZ/S2SL0: {e}";
        }
        if (Stage1Enabled && S1Fmt == 3) return "reserved S1Fmt";
        return null;
    }
}
