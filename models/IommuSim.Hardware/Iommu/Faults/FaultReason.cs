namespace IommuSim.Hardware.Iommu.Faults;

/// <summary>Why a translation failed; names are the keys of <c>faults.byReason</c>.</summary>
public enum FaultReason : byte
{
    /// <summary>Context entry (or its root entry) not present.</summary>
    ContextNotPresent,
    /// <summary>PASID directory or PASID-table entry not present, or PASID beyond the directory.</summary>
    PasidNotValid,
    /// <summary>Second-stage entry not present.</summary>
    SecondStageNotPresent,
    /// <summary>First-stage entry not present.</summary>
    FirstStageNotPresent,
    /// <summary>Write to a read-only page or read from a write-only page.</summary>
    Permission,
    /// <summary>Input address beyond the table's address width.</summary>
    AddressWidth,
    /// <summary>A request with a PASID to a device whose context has no PASID support.</summary>
    PasidNotSupported,
    /// <summary>A recoverable fault answered INVALID/FAILURE by software.</summary>
    PageResponseFailure,
}

public static class FaultReasons
{
    public static string Key(this FaultReason r) => r switch
    {
        FaultReason.ContextNotPresent => "contextNotPresent",
        FaultReason.PasidNotValid => "pasidNotValid",
        FaultReason.SecondStageNotPresent => "secondStageNotPresent",
        FaultReason.FirstStageNotPresent => "firstStageNotPresent",
        FaultReason.Permission => "permission",
        FaultReason.AddressWidth => "addressWidth",
        FaultReason.PasidNotSupported => "pasidNotSupported",
        FaultReason.PageResponseFailure => "pageResponseFailure",
        _ => r.ToString(),
    };
}
