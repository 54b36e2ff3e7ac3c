using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Iommu.Faults;

/// <summary>A non-recoverable fault as recorded in the fault log.</summary>
public readonly record struct FaultRecord(long TimePs, ushort RequesterId, uint Pasid, bool HasPasid, ulong Address, Access Access, FaultReason Reason);

/// <summary>A recoverable page request (PRQ descriptor) from an ATS/PRI device.</summary>
public readonly record struct PageRequest(long TimePs, ushort RequesterId, uint Pasid, bool HasPasid, ulong Address, Access Access, int PageGroupIndex, bool LastInGroup);
