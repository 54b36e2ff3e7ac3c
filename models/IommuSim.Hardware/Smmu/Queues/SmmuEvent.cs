namespace IommuSim.Hardware.Smmu.Queues;

/// <summary>
/// An event record (SMMUv3 §7.3, 32 bytes): dword0 type[7:0] SSV[11] SubstreamID[31:12]
/// StreamID[63:32]; dword1 STAG[15:0] Stall[31] PnU[33] InD[34] RnW[35] S2[39] CLASS[41:40];
/// dword2 InputAddr; dword3 IPA[51:3].
/// </summary>
public readonly record struct SmmuEvent(SmmuEventType Type, uint Sid, uint Ssid, bool SubstreamValid, ulong InputAddress,
    bool Write, bool Stage2, SmmuEventClass Class, ulong Ipa, bool Stall, ushort Stag)
{
    public const int Bytes = 32;

    public void Encode(Span<ulong> d)
    {
        d[0] = (ulong)Type | (SubstreamValid ? 1UL << 11 : 0) | (((ulong)Ssid & 0xFFFFF) << 12) | ((ulong)Sid << 32);
        d[1] = Stag | (Stall ? 1UL << 31 : 0) | (Write ? 0 : 1UL << 35) | (Stage2 ? 1UL << 39 : 0) | ((ulong)Class << 40);
        d[2] = InputAddress;
        d[3] = Ipa & 0x000F_FFFF_FFFF_FFF8UL;
    }

    public static SmmuEvent Decode(ReadOnlySpan<ulong> d) => new(
        (SmmuEventType)(byte)d[0], (uint)(d[0] >> 32), (uint)((d[0] >> 12) & 0xFFFFF), ((d[0] >> 11) & 1) != 0, d[2],
        ((d[1] >> 35) & 1) == 0, ((d[1] >> 39) & 1) != 0, (SmmuEventClass)((d[1] >> 40) & 3), d[3] & 0x000F_FFFF_FFFF_FFF8UL,
        ((d[1] >> 31) & 1) != 0, (ushort)d[1]);
}

/// <summary>EVT CLASS: what the faulting access was for.</summary>
public enum SmmuEventClass : byte
{
    /// <summary>Fetching a CD.</summary>
    Cd = 0,
    /// <summary>A stage-1 table walk (nested: stage 2 refused a stage-1 table address).</summary>
    TranslationTable = 1,
    /// <summary>The input transaction's own address.</summary>
    Input = 2,
}
