using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Iommu.Tables;

/// <summary>
/// The decoded 256-bit scalable-mode context entry. Encoded (first two qwords):
/// Q0: P(0) FPD(1) DTE(2, device-TLB enable) PASIDE(3) PRE(4) PDTS(9-11: directory has
/// 2^(PDTS+7) entries) PASIDDIRPTR(12-63); Q1: RID_PASID(0-19).
/// </summary>
public readonly record struct ContextEntry(
    bool Present,
    ulong PasidDirectory,
    int PasidDirectorySizeCode,
    uint RidPasid,
    bool DeviceTlbEnable = false,
    bool PasidEnable = true,
    bool PageRequestEnable = false)
{
    public const int Bytes = 32;

    /// <summary>Number of PASID-directory entries the PDTS field allows.</summary>
    public int PasidDirectoryEntries => 1 << (PasidDirectorySizeCode + 7);

    public (ulong Q0, ulong Q1) Encode()
    {
        if (!Present) return (0, 0);
        ulong q0 = 1UL | (DeviceTlbEnable ? 4UL : 0) | (PasidEnable ? 8UL : 0) | (PageRequestEnable ? 16UL : 0)
                   | ((ulong)(PasidDirectorySizeCode & 7) << 9) | (PasidDirectory & PageTableFormat.AddressMask);
        return (q0, RidPasid & 0xFFFFF);
    }

    public static ContextEntry Decode(ulong q0, ulong q1)
    {
        if ((q0 & 1) == 0) return default;
        return new ContextEntry(true, q0 & PageTableFormat.AddressMask, (int)((q0 >> 9) & 7), (uint)(q1 & 0xFFFFF),
            DeviceTlbEnable: (q0 & 4) != 0, PasidEnable: (q0 & 8) != 0, PageRequestEnable: (q0 & 16) != 0);
    }
}
