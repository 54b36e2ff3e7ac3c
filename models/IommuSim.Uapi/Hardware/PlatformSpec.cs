using IommuSim.Hardware.Iommu.Tables;

namespace IommuSim.Uapi.Hardware;

/// <summary>A PCI device as the host kernel sees it at boot (present, not yet bound to anything).</summary>
public sealed record DeviceSpec(
    RequesterId Rid,
    int IommuGroup,
    bool Ats = false,
    int PasidBits = 20,
    bool CacheCoherent = true,
    bool MsiIsolated = true,
    bool PageRequests = false)
{
    public static DeviceSpec Parse(string bdf, int group, bool ats = false, int pasidBits = 20)
        => RequesterId.TryParse(bdf, out var rid)
            ? new DeviceSpec(rid, group, ats, pasidBits)
            : throw new FormatException($"'{bdf}' is not a PCI address (SSSS:BB:DD.F)");
}

/// <summary>
/// What the IOMMU driver reports (the VT-d capability and extended-capability bits iommufd
/// looks at) and the devices present. The defaults are the platform of reference/iommufd.md.
/// </summary>
public sealed record PlatformSpec
{
    public IReadOnlyList<DeviceSpec> Devices { get; init; } =
    [
        DeviceSpec.Parse("0000:03:00.0", 3),
        DeviceSpec.Parse("0000:04:00.0", 4),
    ];

    /// <summary>Second-stage levels used for host paging domains (4 → 48-bit aperture, 5 → 57-bit).</summary>
    public int SecondStageLevels { get; init; } = 4;

    /// <summary>5-level first-stage paging (addr_width 57 for nested stage-1 tables).</summary>
    public bool FirstStage5Level { get; init; } = true;

    /// <summary>Second-stage A/D bits (SLADS): dirty tracking on paging domains.</summary>
    public bool DirtyTracking { get; init; } = true;

    /// <summary>Nested translation (ECAP.NEST).</summary>
    public bool Nesting { get; init; } = true;

    /// <summary>Supervisor requests (ECAP.SRS), needed for the SRE flag of VT-d stage-1 data.</summary>
    public bool SupervisorRequests { get; init; }

    /// <summary>Extended accessed flag (ECAP.EAFS), needed for EAFE.</summary>
    public bool ExtendedAccessedFlag { get; init; }

    /// <summary>Largest page size the IOMMU maps (2M or 1G; the bitmap always has 4K).</summary>
    public bool Supports1G { get; init; } = true;

    /// <summary>vfio_iommu_type1 allow_unsafe_interrupts / iommufd's allow_unsafe_interrupts.</summary>
    public bool AllowUnsafeInterrupts { get; init; }

    /// <summary>Whether the process may raise RLIMIT_MODE (CAP_SYS_RESOURCE).</summary>
    public bool Privileged { get; init; } = true;

    /// <summary>VFIO_NOIOMMU_IOMMU extension (vfio noiommu mode compiled in and enabled).</summary>
    public bool NoIommu { get; init; }

    public ulong PageSizeBitmap => 0x1000UL | 0x20_0000UL | (Supports1G ? 0x4000_0000UL : 0);

    public int MaxPasidLog2 => 20;
}
