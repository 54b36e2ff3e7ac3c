namespace IommuSim.Uapi.Memory;

/// <summary>
/// A memfd (memfd_create + ftruncate): anonymous shared memory of a fixed size, backed by contiguous,
/// 2 MiB-aligned host-physical memory. A VMM can mmap it (the same pages appear at a user VA) and map
/// ranges of it into an IOAS with IOMMU_IOAS_MAP_FILE, which pins them by file offset rather than by
/// user address.
/// </summary>
public sealed class Memfd(ulong physicalBase, ulong size)
{
    /// <summary>Host-physical address of file offset 0.</summary>
    public ulong PhysicalBase { get; } = physicalBase;

    /// <summary>i_size: bytes of the file.</summary>
    public ulong Size { get; } = size;
}
