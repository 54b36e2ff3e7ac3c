namespace IommuSim.Uapi.Driver;

/// <summary>VT-d stage-1 data flags (IOMMU_VTD_S1_*).</summary>
[Flags]
public enum VtdS1Flags : ulong
{
    None = 0,
    SRE = 1,
    EAFE = 2,
    WPE = 4,
}

/// <summary>
/// A nested domain: a guest-owned first-stage table (pgtbl_addr is a GPA inside the VM) over the
/// stage 2 of a NEST_PARENT paging domain. The driver never reads the guest table; it only points
/// PASID entries at it (PGTT nested) and forwards the guest's invalidations.
/// </summary>
public sealed class VtdNestedDomain : IommuNestedDomain
{
    internal VtdNestedDomain(ushort did, VtdPagingDomain parent, VtdS1Flags flags, ulong pgtblAddr, uint addrWidth)
        : base(did)
    {
        Parent = parent;
        Flags = flags;
        PgtblAddr = pgtblAddr;
        AddrWidth = addrWidth;
    }

    public VtdPagingDomain Parent { get; }
    public override IommuPagingDomain ParentDomain => Parent;
    public VtdS1Flags Flags { get; }

    /// <summary>Guest-physical address of the stage-1 root.</summary>
    public ulong PgtblAddr { get; }

    /// <summary>48 (4-level) or 57 (5-level); checked at attach, as the driver does.</summary>
    public uint AddrWidth { get; }

    public int Levels => AddrWidth == 57 ? 5 : 4;
}
