namespace IommuSim.Hardware.Smmu.Queues;

/// <summary>SMMUv3 command opcodes (SMMUv3 spec §4, Table 4-1; Linux's CMDQ_OP_*).</summary>
public enum SmmuOpcode : byte
{
    PrefetchConfig = 0x01,
    CfgiSte = 0x03,
    CfgiSteRange = 0x04,
    CfgiCd = 0x05,
    CfgiCdAll = 0x06,
    TlbiNhAll = 0x10,
    TlbiNhAsid = 0x11,
    TlbiNhVa = 0x12,
    TlbiNhVaa = 0x13,
    TlbiS12Vmall = 0x28,
    TlbiS2Ipa = 0x2a,
    TlbiNsnhAll = 0x30,
    AtcInv = 0x40,
    PriResp = 0x41,
    Resume = 0x44,
    CmdSync = 0x46,
}

/// <summary>
/// One 16-byte command as the driver writes it into the command queue (field positions as in
/// Linux's arm-smmu-v3.h CMDQ_* masks): dword0 opcode[7:0], SSV[11], SSID[31:12] (CFGI_CD,
/// ATC_INV, PRI_RESP), SID[63:32] (CFGI_*, ATC_INV, PRI_RESP, RESUME), VMID[47:32] and ASID[63:48]
/// (TLBI_*), NUM[16:12] and SCALE[24:20] (range TLBIs), CFGI_STE_RANGE range[4:0] in dword1,
/// RESUME action[13:12], PRI_RESP resp[13:12]; dword1 Leaf[0], TTL[9:8], TG[11:10] and address[63:12]
/// (TLBI_NH_VA/VAA, TLBI_S2_IPA: CMDQ_TLBI_1_*), ATC_INV size[5:0] and address[63:12], RESUME
/// STAG[15:0], PRI_RESP PRGI[8:0], CMD_SYNC MSI address[51:2].
/// A TLBI by address with TG = 0 names one address (every entry that maps it, any level); with TG ≠ 0
/// (SMMU_IDR3.RIL) it names (NUM + 1) × 2^SCALE translation granules of size TG from the address, and a
/// nonzero TTL restricts it to leaves of that level (SMMUv3 spec, §4.4 "TLB invalidation", range fields).
/// </summary>
public readonly record struct SmmuCommand
{
    public SmmuOpcode Opcode { get; init; }
    public uint Sid { get; init; }
    public uint Ssid { get; init; }
    public bool SubstreamValid { get; init; }
    public ushort Vmid { get; init; }
    public ushort Asid { get; init; }
    public ulong Address { get; init; }
    /// <summary>ATC_INV: log2 of the span in 4 KiB pages (52: everything).</summary>
    public uint Pages { get; init; }
    /// <summary>TLBI: leaf-only (walk caches are kept).</summary>
    public bool Leaf { get; init; }
    /// <summary>Range TLBI: NUM, the number of 2^SCALE-granule blocks minus one (0–31).</summary>
    public byte Num { get; init; }
    /// <summary>Range TLBI: SCALE, log2 of the block size in granules (0–31).</summary>
    public byte Scale { get; init; }
    /// <summary>TLBI: TG, the translation granule of a range (0 no range, 1 4 KiB, 2 16 KiB, 3 64 KiB).</summary>
    public byte Tg { get; init; }
    /// <summary>TLBI: TTL, the level of the leaves to invalidate (0 any level; 1–3; meaningful with TG ≠ 0).</summary>
    public byte Ttl { get; init; }
    /// <summary>CFGI_STE_RANGE: log2 of the number of StreamIDs (31 = all: CFGI_ALL).</summary>
    public byte Range { get; init; }
    /// <summary>RESUME: retry (true) or terminate; PRI_RESP: the response code (0 deny, 1 fail, 2 success).</summary>
    public byte Action { get; init; }
    /// <summary>RESUME: the stall tag; PRI_RESP: the page-request group index.</summary>
    public ushort Tag { get; init; }
    /// <summary>CMD_SYNC: address the completion MSI writes (0: the driver polls CONS).</summary>
    public ulong MsiAddress { get; init; }

    public SmmuCommand() { }

    public void Encode(out ulong dword0, out ulong dword1)
    {
        dword0 = (ulong)Opcode;
        dword1 = 0;
        switch (Opcode)
        {
            case SmmuOpcode.CfgiSte:
            case SmmuOpcode.CfgiCdAll:
            case SmmuOpcode.PrefetchConfig:
                dword0 |= (ulong)Sid << 32;
                break;
            case SmmuOpcode.CfgiSteRange:
                dword0 |= (ulong)Sid << 32;
                dword1 = (ulong)Range & 31;
                break;
            case SmmuOpcode.CfgiCd:
                dword0 |= (SubstreamValid ? 1UL << 11 : 0) | (((ulong)Ssid & 0xFFFFF) << 12) | ((ulong)Sid << 32);
                break;
            case SmmuOpcode.TlbiNhAll:
            case SmmuOpcode.TlbiS12Vmall:
            case SmmuOpcode.TlbiNhAsid:
                dword0 |= ((ulong)Vmid << 32) | ((ulong)Asid << 48);
                break;
            case SmmuOpcode.TlbiNhVa:
            case SmmuOpcode.TlbiNhVaa:
            case SmmuOpcode.TlbiS2Ipa:
                dword0 |= (((ulong)Num & 31) << 12) | (((ulong)Scale & 31) << 20) | ((ulong)Vmid << 32) | ((ulong)Asid << 48);
                dword1 = (Leaf ? 1UL : 0) | (((ulong)Ttl & 3) << 8) | (((ulong)Tg & 3) << 10) | (Address & ~0xFFFUL);
                break;
            case SmmuOpcode.AtcInv:
                dword0 |= (SubstreamValid ? 1UL << 11 : 0) | (((ulong)Ssid & 0xFFFFF) << 12) | ((ulong)Sid << 32);
                dword1 = ((ulong)Pages & 63) | (Address & ~0xFFFUL);
                break;
            case SmmuOpcode.PriResp:
                dword0 |= (SubstreamValid ? 1UL << 11 : 0) | (((ulong)Ssid & 0xFFFFF) << 12) | ((ulong)Sid << 32);
                dword1 = ((ulong)Tag & 0x1FF) | (((ulong)Action & 3) << 12);
                break;
            case SmmuOpcode.Resume:
                dword0 |= (((ulong)Action & 3) << 12) | ((ulong)Sid << 32);
                dword1 = Tag;
                break;
            case SmmuOpcode.CmdSync:
                dword1 = MsiAddress & 0x000F_FFFF_FFFF_FFFCUL;
                break;
        }
    }

    public static SmmuCommand Decode(ulong dword0, ulong dword1)
    {
        var op = (SmmuOpcode)(byte)dword0;
        uint sid = (uint)(dword0 >> 32);
        ushort vmid = (ushort)(dword0 >> 32), asid = (ushort)(dword0 >> 48);
        return op switch
        {
            SmmuOpcode.CfgiSte or SmmuOpcode.CfgiCdAll or SmmuOpcode.PrefetchConfig => new() { Opcode = op, Sid = sid },
            SmmuOpcode.CfgiSteRange => new() { Opcode = op, Sid = sid, Range = (byte)(dword1 & 31) },
            SmmuOpcode.CfgiCd => new() { Opcode = op, Sid = sid, SubstreamValid = ((dword0 >> 11) & 1) != 0, Ssid = (uint)((dword0 >> 12) & 0xFFFFF) },
            SmmuOpcode.TlbiNhAll or SmmuOpcode.TlbiS12Vmall or SmmuOpcode.TlbiNhAsid => new() { Opcode = op, Vmid = vmid, Asid = asid },
            SmmuOpcode.TlbiNhVa or SmmuOpcode.TlbiNhVaa or SmmuOpcode.TlbiS2Ipa => new()
            {
                Opcode = op, Vmid = vmid, Asid = asid, Leaf = (dword1 & 1) != 0,
                Num = (byte)((dword0 >> 12) & 31), Scale = (byte)((dword0 >> 20) & 31),
                Ttl = (byte)((dword1 >> 8) & 3), Tg = (byte)((dword1 >> 10) & 3), Address = dword1 & ~0xFFFUL,
            },
            SmmuOpcode.AtcInv => new()
            {
                Opcode = op, Sid = sid, SubstreamValid = ((dword0 >> 11) & 1) != 0, Ssid = (uint)((dword0 >> 12) & 0xFFFFF),
                Pages = (uint)(dword1 & 63), Address = dword1 & ~0xFFFUL,
            },
            SmmuOpcode.PriResp => new()
            {
                Opcode = op, Sid = sid, SubstreamValid = ((dword0 >> 11) & 1) != 0, Ssid = (uint)((dword0 >> 12) & 0xFFFFF),
                Tag = (ushort)(dword1 & 0x1FF), Action = (byte)((dword1 >> 12) & 3),
            },
            SmmuOpcode.Resume => new() { Opcode = op, Sid = sid, Action = (byte)((dword0 >> 12) & 3), Tag = (ushort)dword1 },
            SmmuOpcode.CmdSync => new() { Opcode = op, MsiAddress = dword1 & 0x000F_FFFF_FFFF_FFFCUL },
            _ => new() { Opcode = op },
        };
    }

    /// <summary>log2 of the TG granule (12, 14, 16); 0 when TG = 0 (no range).</summary>
    public int TgShift => Tg == 0 ? 0 : 10 + 2 * Tg;

    /// <summary>Bytes a range TLBI covers from <see cref="Address"/>: (NUM + 1) × 2^SCALE × granule; 0 when TG = 0.</summary>
    public ulong RangeBytes => Tg == 0 ? 0 : ((ulong)Num + 1) << (Scale + TgShift);

    /// <summary>log2 of the leaf size TTL names under TG (4 KiB: level 3 → 12, 2 → 21, 1 → 30); 0 for any level.</summary>
    public int TtlLeafShift => Tg == 0 || Ttl == 0 ? 0 : TgShift + (3 - Ttl) * (TgShift - 3);

    /// <summary>True for opcodes this model executes (anything else is CERROR_ILL).</summary>
    public static bool IsKnown(SmmuOpcode op) => Enum.IsDefined(op);
}
