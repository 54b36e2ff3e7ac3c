using IommuSim.Hardware.Smmu.Tables;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// struct arm_smmu_nested_domain: a guest's STE (the vSTE of IOMMU_HWPT_DATA_ARM_SMMUV3) over a
/// NEST_PARENT stage-2 domain. The guest owns its CD table and stage-1 tables (at IPAs); the host
/// writes a nested STE that takes the guest's stage-1 fields (S1ContextPtr, S1Fmt, S1CDMax, S1DSS, EATS)
/// and the parent's stage-2 fields (arm_smmu_make_nested_domain_ste). A guest STE of Config abort or
/// bypass becomes an abort STE or the parent's stage-2-only STE.
/// </summary>
public sealed class ArmSmmuNestedDomain : IommuNestedDomain
{
    internal ArmSmmuNestedDomain(ArmSmmuDomain parent, in StreamTableEntry guestSte) : base(parent.Vmid)
    {
        Parent = parent;
        GuestSte = guestSte;
    }

    public ArmSmmuDomain Parent { get; }
    public override IommuPagingDomain ParentDomain => Parent;

    /// <summary>The guest's STE after arm_smmu_validate_vste kept only the fields nesting allows.</summary>
    public StreamTableEntry GuestSte { get; }

    /// <summary>The vIOMMU whose HWPT_ALLOC made this domain (arm_smmu_nested_domain.vsmmu), when it came through one.</summary>
    public ArmVsmmu? Vsmmu { get; internal set; }

    /// <summary>
    /// arm_smmu_validate_vste: an invalid vSTE is treated as abort; a valid one must have Config abort, bypass or
    /// stage 1 and EATS abort or translate, else EIO. Only the stage-1 fields are kept.
    /// </summary>
    public static Errno Validate(ReadOnlySpan<ulong> vste, out StreamTableEntry kept)
    {
        kept = default;
        if (vste.Length < 2) return Errno.EINVAL;
        Span<ulong> d = stackalloc ulong[8];
        d.Clear();
        d[0] = vste[0];
        d[1] = vste[1];
        var g = StreamTableEntry.Decode(d);
        if (!g.Valid)
        {
            kept = new StreamTableEntry { Valid = true, Config = SteConfig.Abort };
            return Errno.OK;
        }
        if (g.Config is not (SteConfig.Abort or SteConfig.Bypass or SteConfig.Stage1)) return Errno.EIO;
        if (g.Eats > 1) return Errno.EIO;
        kept = new StreamTableEntry
        {
            Valid = true, Config = g.Config, S1Fmt = g.S1Fmt, S1ContextPtr = g.S1ContextPtr, S1CdMax = g.S1CdMax, S1Dss = g.S1Dss, Eats = g.Eats,
        };
        return Errno.OK;
    }
}
