using System.Runtime.CompilerServices;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Iommu.Walk;

/// <summary>
/// Second-stage accessed/dirty flag update (VT-d spec §3.7.2, enabled per PASID entry by SSADE, which
/// iommufd's dirty tracking sets): a write through a leaf entry sets its D (and A) bit in memory,
/// atomically in hardware. Done by the page walker when it fills the IOTLB for a write, and by the
/// IOTLB hit path on the first write through a clean cached translation; both call this one place.
/// </summary>
internal static class AccessedDirtyFlags
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SetSecondStageDirty(PhysicalMemory mem, ulong leafEntryAddress)
        => mem.WriteU64(leafEntryAddress, mem.ReadU64(leafEntryAddress) | PageTableFormat.S2Dirty | PageTableFormat.S2Accessed);
}
