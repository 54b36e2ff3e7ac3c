// The VFIO ioctl argument structs (include/uapi/linux/vfio.h) the simulator models, with the
// kernel's field names. argsz is modelled where the kernel checks it.
#pragma warning disable CA1051 // uAPI structs are plain field bags, like their C originals

namespace IommuSim.Uapi.Vfio;

public static class VfioConst
{
    public const int VFIO_API_VERSION = 0;

    // CHECK_EXTENSION / SET_IOMMU arguments
    public const uint VFIO_TYPE1_IOMMU = 1;
    public const uint VFIO_SPAPR_TCE_IOMMU = 2;
    public const uint VFIO_TYPE1v2_IOMMU = 3;
    public const uint VFIO_DMA_CC_IOMMU = 4;
    public const uint VFIO_EEH = 5;
    public const uint VFIO_TYPE1_NESTING_IOMMU = 6;
    public const uint VFIO_SPAPR_TCE_v2_IOMMU = 7;
    public const uint VFIO_NOIOMMU_IOMMU = 8;
    public const uint VFIO_UNMAP_ALL = 9;
    public const uint VFIO_UPDATE_VADDR = 10;

    public const uint VFIO_GROUP_FLAGS_VIABLE = 1;
    public const uint VFIO_GROUP_FLAGS_CONTAINER_SET = 2;

    public const uint VFIO_DMA_MAP_FLAG_READ = 1;
    public const uint VFIO_DMA_MAP_FLAG_WRITE = 2;
    public const uint VFIO_DMA_MAP_FLAG_VADDR = 4;

    public const uint VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1;
    public const uint VFIO_DMA_UNMAP_FLAG_ALL = 2;
    public const uint VFIO_DMA_UNMAP_FLAG_VADDR = 4;

    public const uint VFIO_IOMMU_INFO_PGSIZES = 1;
    public const uint VFIO_IOMMU_INFO_CAPS = 2;
    public const ushort VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
    public const ushort VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

    public const uint VFIO_DEVICE_ATTACH_PASID = 1;
    public const uint VFIO_DEVICE_DETACH_PASID = 1;
}

public sealed class VfioIommuType1DmaMap
{
    public const uint MinSize = 32;
    public uint argsz = MinSize;
    public uint flags;
    public ulong vaddr;
    public ulong iova;
    public ulong size;
}

public sealed class VfioIommuType1DmaUnmap
{
    public const uint MinSize = 24;
    public uint argsz = MinSize;
    public uint flags;
    public ulong iova;
    /// <summary>In: bytes to unmap; out: bytes unmapped.</summary>
    public ulong size;
}

/// <summary>One capability of the VFIO_IOMMU_GET_INFO chain.</summary>
public sealed record VfioInfoCap(ushort id, ushort version, uint offset, IReadOnlyList<(ulong start, ulong end)> iova_ranges, uint avail);

public sealed class VfioIommuType1Info
{
    /// <summary>sizeof(struct vfio_iommu_type1_info): argsz, flags, iova_pgsizes, cap_offset, pad.</summary>
    public const uint MinSize = 24;

    /// <summary>offsetofend(struct vfio_iommu_type1_info, iova_pgsizes): the struct before capabilities existed, the
    /// smallest argsz the kernel accepts.</summary>
    public const uint PreCapsSize = 16;
    public uint argsz = MinSize;
    public uint flags;
    public ulong iova_pgsizes;
    public uint cap_offset;
    /// <summary>The capability chain as written into the caller's buffer (only what fits in argsz).</summary>
    public List<VfioInfoCap> caps = [];
}

public sealed class VfioDeviceBindIommufd
{
    public uint argsz = 24;
    public uint flags;
    public int iommufd;
    public uint out_devid;
}

public sealed class VfioDeviceAttachIommufdPt
{
    public uint argsz = 16;
    public uint flags;
    /// <summary>In: IOAS or HWPT id; out: the HWPT attached.</summary>
    public uint pt_id;
    public uint pasid;
}

public sealed class VfioDeviceDetachIommufdPt
{
    public uint argsz = 12;
    public uint flags;
    public uint pasid;
}

public sealed class VfioGroupStatus
{
    public uint argsz = 8;
    public uint flags;
}
