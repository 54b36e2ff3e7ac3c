namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// The bit fields of arm-smmu-v3.h the vIOMMU path checks and rewrites, and the two pure steps of
/// arm-smmu-v3-iommufd.c that work on user words: <see cref="ValidateVste"/> (arm_smmu_validate_vste) and
/// <see cref="ConvertUserCmd"/> (arm_vsmmu_convert_user_cmd).
/// </summary>
public static class ArmVsmmuUserData
{
    // ---- STE word 0 / 1 (STRTAB_STE_*) ----
    public const ulong STRTAB_STE_0_V = 1UL << 0;
    public const ulong STRTAB_STE_0_CFG = 0x7UL << 1;
    public const ulong STRTAB_STE_0_S1FMT = 0x3UL << 4;
    public const ulong STRTAB_STE_0_S1CTXPTR_MASK = ((1UL << 52) - 1) & ~((1UL << 6) - 1); // GENMASK_ULL(51, 6)
    public const ulong STRTAB_STE_0_S1CDMAX = 0x1FUL << 59;
    public const uint STRTAB_STE_0_CFG_ABORT = 0;
    public const uint STRTAB_STE_0_CFG_BYPASS = 4;
    public const uint STRTAB_STE_0_CFG_S1_TRANS = 5;
    public const uint STRTAB_STE_0_CFG_S2_TRANS = 6;
    public const uint STRTAB_STE_0_CFG_NESTED = 7;
    public const ulong STRTAB_STE_1_S1DSS = 0x3UL << 0;
    public const ulong STRTAB_STE_1_S1CIR = 0x3UL << 2;
    public const ulong STRTAB_STE_1_S1COR = 0x3UL << 4;
    public const ulong STRTAB_STE_1_S1CSH = 0x3UL << 6;
    public const ulong STRTAB_STE_1_MEV = 1UL << 19;
    public const ulong STRTAB_STE_1_S1STALLD = 1UL << 27;
    public const ulong STRTAB_STE_1_EATS = 0x3UL << 28;
    public const uint STRTAB_STE_1_EATS_ABT = 0;
    public const uint STRTAB_STE_1_EATS_TRANS = 1;
    public const uint STRTAB_STE_1_EATS_S1CHK = 2;

    /// <summary>The bits user space may set in a vSTE (STRTAB_STE_0/1_NESTING_ALLOWED).</summary>
    public const ulong STRTAB_STE_0_NESTING_ALLOWED = STRTAB_STE_0_V | STRTAB_STE_0_CFG | STRTAB_STE_0_S1FMT | STRTAB_STE_0_S1CTXPTR_MASK | STRTAB_STE_0_S1CDMAX;
    public const ulong STRTAB_STE_1_NESTING_ALLOWED = STRTAB_STE_1_S1DSS | STRTAB_STE_1_S1CIR | STRTAB_STE_1_S1COR | STRTAB_STE_1_S1CSH | STRTAB_STE_1_S1STALLD | STRTAB_STE_1_EATS;

    // ---- commands (CMDQ_*) ----
    public const ulong CMDQ_0_OP = 0xFFUL;
    public const ulong CMDQ_TLBI_0_VMID = 0xFFFFUL << 32;
    public const ulong CMDQ_CFGI_0_SID = 0xFFFF_FFFFUL << 32;
    public const uint CMDQ_OP_CFGI_CD = 0x05;
    public const uint CMDQ_OP_CFGI_CD_ALL = 0x06;
    public const uint CMDQ_OP_TLBI_NH_ALL = 0x10;
    public const uint CMDQ_OP_TLBI_NH_ASID = 0x11;
    public const uint CMDQ_OP_TLBI_NH_VA = 0x12;
    public const uint CMDQ_OP_TLBI_NH_VAA = 0x13;
    public const uint CMDQ_OP_TLBI_NSNH_ALL = 0x30;
    public const uint CMDQ_OP_ATC_INV = 0x40;

    /// <summary>CMDQ_BATCH_ENTRIES (BITS_PER_LONG): arm_vsmmu_cache_invalidate issues at most 63 commands + CMD_SYNC at a time.</summary>
    public const int CMDQ_BATCH_ENTRIES = 64;

    public static uint Cfg(ulong ste0) => (uint)((ste0 & STRTAB_STE_0_CFG) >> 1);
    public static uint Eats(ulong ste1) => (uint)((ste1 & STRTAB_STE_1_EATS) >> 28);

    /// <summary>
    /// arm_smmu_validate_vste: a non-valid vSTE is zeroed and accepted; a valid one may only set the NESTING_ALLOWED
    /// bits, Config must be abort, bypass or S1_TRANS, EATS abort or translate (EIO otherwise). EATS is cleared from
    /// the words (the host sets it); <paramref name="enableAts"/> = S1_TRANS with EATS = TRANS.
    /// </summary>
    public static Errno ValidateVste(ulong[] ste, out bool enableAts)
    {
        enableAts = false;
        if ((ste[0] & STRTAB_STE_0_V) == 0)
        {
            ste[0] = ste[1] = 0;
            return Errno.OK;
        }
        if ((ste[0] & ~STRTAB_STE_0_NESTING_ALLOWED) != 0 || (ste[1] & ~STRTAB_STE_1_NESTING_ALLOWED) != 0) return Errno.EIO;
        uint cfg = Cfg(ste[0]);
        if (cfg != STRTAB_STE_0_CFG_ABORT && cfg != STRTAB_STE_0_CFG_BYPASS && cfg != STRTAB_STE_0_CFG_S1_TRANS) return Errno.EIO;
        uint eats = Eats(ste[1]);
        ste[1] &= ~STRTAB_STE_1_EATS;
        if (eats != STRTAB_STE_1_EATS_ABT && eats != STRTAB_STE_1_EATS_TRANS) return Errno.EIO;
        if (cfg == STRTAB_STE_0_CFG_S1_TRANS) enableAts = eats == STRTAB_STE_1_EATS_TRANS;
        return Errno.OK;
    }

    /// <summary>
    /// arm_vsmmu_convert_user_cmd, in place on the two words: TLBI_NSNH_ALL becomes TLBI_NH_ALL of the vIOMMU's VMID;
    /// TLBI_NH_VA/VAA/ALL/ASID get the VMID forced; ATC_INV, CFGI_CD and CFGI_CD_ALL get the vSID replaced by the
    /// physical SID (<paramref name="vsidToSid"/> false: EIO). Every other opcode is EIO.
    /// </summary>
    public static Errno ConvertUserCmd(ref ulong cmd0, ref ulong cmd1, ushort vmid, Func<uint, (bool Found, uint Sid)> vsidToSid)
    {
        switch ((uint)(cmd0 & CMDQ_0_OP))
        {
            case CMDQ_OP_TLBI_NSNH_ALL:
                cmd0 = CMDQ_OP_TLBI_NH_ALL | ((ulong)vmid << 32);
                cmd1 = 0;
                break;
            case CMDQ_OP_TLBI_NH_VA:
            case CMDQ_OP_TLBI_NH_VAA:
            case CMDQ_OP_TLBI_NH_ALL:
            case CMDQ_OP_TLBI_NH_ASID:
                cmd0 = (cmd0 & ~CMDQ_TLBI_0_VMID) | ((ulong)vmid << 32);
                break;
            case CMDQ_OP_ATC_INV:
            case CMDQ_OP_CFGI_CD:
            case CMDQ_OP_CFGI_CD_ALL:
                {
                    uint vsid = (uint)((cmd0 & CMDQ_CFGI_0_SID) >> 32);
                    var (found, sid) = vsidToSid(vsid);
                    if (!found) return Errno.EIO;
                    cmd0 = (cmd0 & ~CMDQ_CFGI_0_SID) | ((ulong)sid << 32);
                    break;
                }
            default:
                return Errno.EIO;
        }
        return Errno.OK;
    }
}
