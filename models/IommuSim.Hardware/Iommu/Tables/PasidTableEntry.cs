using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Iommu.Tables;

/// <summary>PASID-granular translation type (PGTT) of a scalable-mode PASID-table entry.</summary>
public enum Pgtt : byte
{
    FirstStage = 0b001,
    SecondStage = 0b010,
    Nested = 0b011,
    PassThrough = 0b100,
}

/// <summary>
/// The decoded 512-bit scalable-mode PASID-table entry. Encoded layout (first three qwords):
/// Q0: P(0) FPD(1) AW(2-4: 1=39-bit/3-level, 2=48/4, 3=57/5) PGTT(6-8) SLADE(9) SLPTPTR(12-63);
/// Q1: DID(0-15) PRE(32, page requests enabled);
/// Q2: SRE(0) FLPM(2-3: 0=4-level, 1=5-level) FLPTPTR(12-63).
/// </summary>
public readonly record struct PasidTableEntry(
    bool Present,
    Pgtt Pgtt,
    ushort DomainId,
    ulong FirstStageTable,
    int FirstStageLevels,
    ulong SecondStageTable,
    int SecondStageLevels,
    bool DirtyTracking = false,
    bool PageRequestEnable = false,
    bool SupervisorRequests = false,
    bool FaultProcessingDisable = false)
{
    public const int Bytes = 64;

    public (ulong Q0, ulong Q1, ulong Q2) Encode()
    {
        if (!Present) return (0, 0, 0);
        ulong aw = SecondStageLevels switch { 3 => 1UL, 4 => 2UL, 5 => 3UL, _ => 0UL };
        ulong q0 = 1UL | (FaultProcessingDisable ? 2UL : 0) | (aw << 2) | ((ulong)Pgtt << 6)
                   | (DirtyTracking ? 1UL << 9 : 0) | (SecondStageTable & PageTableFormat.AddressMask);
        ulong q1 = DomainId | (PageRequestEnable ? 1UL << 32 : 0);
        ulong flpm = FirstStageLevels == 5 ? 1UL : 0UL;
        ulong q2 = (SupervisorRequests ? 1UL : 0) | (flpm << 2) | (FirstStageTable & PageTableFormat.AddressMask);
        return (q0, q1, q2);
    }

    public static PasidTableEntry Decode(ulong q0, ulong q1, ulong q2)
    {
        if ((q0 & 1) == 0) return default;
        int aw = (int)((q0 >> 2) & 7);
        return new PasidTableEntry(
            Present: true,
            Pgtt: (Pgtt)((q0 >> 6) & 7),
            DomainId: (ushort)(q1 & 0xFFFF),
            FirstStageTable: q2 & PageTableFormat.AddressMask,
            FirstStageLevels: ((q2 >> 2) & 3) == 1 ? 5 : 4,
            SecondStageTable: q0 & PageTableFormat.AddressMask,
            SecondStageLevels: aw is >= 1 and <= 3 ? aw + 2 : 0,
            DirtyTracking: (q0 & (1UL << 9)) != 0,
            PageRequestEnable: (q1 & (1UL << 32)) != 0,
            SupervisorRequests: (q2 & 1) != 0,
            FaultProcessingDisable: (q0 & 2) != 0);
    }
}
