// The vIOMMU argument structs of include/uapi/linux/iommufd.h (v6.17) and the Arm SMMUv3 / Tegra241 CMDQV
// driver data they carry, with the kernel's field names. Sizes in the comments are sizeof() in the kernel.
#pragma warning disable CA1051 // uAPI structs are plain field bags, like their C originals
#pragma warning disable CA1707, IDE1006 // kernel field names
namespace IommuSim.Uapi.Iommufd;

/// <summary>enum iommu_viommu_type. Linux has no VT-d vIOMMU type: the Intel driver has no viommu ops.</summary>
public enum IommuViommuType : uint
{
    DEFAULT = 0,
    ARM_SMMUV3 = 1,
    TEGRA241_CMDQV = 2,
}

/// <summary>struct iommu_viommu_alloc (40 bytes; min_size 24 = offsetofend(out_viommu_id)).</summary>
public sealed class IommuViommuAlloc
{
    public uint flags;
    public uint type;
    public uint dev_id;
    public uint hwpt_id;
    public uint out_viommu_id;
    /// <summary>data_len: 0 for no driver data (the core then passes NULL to viommu_init).</summary>
    public uint data_len;
    public uint __reserved;
    /// <summary>data_uptr: struct iommu_viommu_tegra241_cmdqv for TEGRA241_CMDQV (its out fields are written back).</summary>
    public IommuViommuTegra241Cmdqv? data;
}

/// <summary>struct iommu_viommu_tegra241_cmdqv (16 bytes): where to mmap the VINTF's page0.</summary>
public sealed class IommuViommuTegra241Cmdqv
{
    public const uint Size = 16;
    public ulong out_vintf_mmap_offset;
    public ulong out_vintf_mmap_length;
}

/// <summary>struct iommu_vdevice_alloc (24 bytes).</summary>
public sealed class IommuVdeviceAlloc
{
    public uint viommu_id;
    public uint dev_id;
    public uint out_vdevice_id;
    public ulong virt_id;
}

/// <summary>struct iommu_ioas_change_process (8 bytes: size, __reserved).</summary>
public sealed class IommuIoasChangeProcess
{
    public uint __reserved;
}

/// <summary>struct iommu_hw_info_arm_smmuv3 (40 bytes): the SMMU's ID registers as arm_smmu_hw_info reads them.</summary>
public sealed class IommuHwInfoArmSmmuv3
{
    public const uint Size = 40;
    public uint flags;
    public uint __reserved;
    public uint[] idr = new uint[6];
    public uint iidr;
    public uint aidr;

    /// <summary>The little-endian bytes user space receives.</summary>
    public byte[] ToBytes()
    {
        var b = new byte[Size];
        BitConverter.TryWriteBytes(b.AsSpan(0), flags);
        for (int i = 0; i < 6; i++) BitConverter.TryWriteBytes(b.AsSpan(8 + 4 * i), idr[i]);
        BitConverter.TryWriteBytes(b.AsSpan(32), iidr);
        BitConverter.TryWriteBytes(b.AsSpan(36), aidr);
        return b;
    }
}

/// <summary>struct iommu_hwpt_arm_smmuv3 (16 bytes): the guest's STE, its two used words.</summary>
public sealed class IommuHwptArmSmmuv3
{
    public const uint Size = 16;
    public ulong[] ste = new ulong[2];
}

/// <summary>struct iommu_viommu_arm_smmuv3_invalidate (16 bytes): one raw SMMUv3 command, two little-endian words.</summary>
public struct IommuViommuArmSmmuv3Invalidate
{
    public ulong cmd0;
    public ulong cmd1;
}

/// <summary>enum iommu_veventq_type.</summary>
public static class IommuVeventqType
{
    public const uint DEFAULT = 0;
    public const uint ARM_SMMUV3 = 1;
    public const uint TEGRA241_CMDQV = 2;
}

/// <summary>enum iommu_veventq_flag.</summary>
public static class IommuVeventqFlag
{
    public const uint LOST_EVENTS = 1;
}

/// <summary>struct iommu_veventq_alloc (32 bytes).</summary>
public sealed class IommuVeventqAlloc
{
    public uint flags;
    public uint viommu_id;
    public uint type;
    public uint veventq_depth;
    public uint out_veventq_id;
    public uint out_veventq_fd;
    public uint __reserved;
}

/// <summary>struct iommufd_vevent_header (8 bytes): flags, then the sequence index in [0, INT_MAX].</summary>
public readonly record struct IommufdVeventHeader(uint flags, uint sequence)
{
    public const int Size = 8;
}

/// <summary>One vEVENT as read() returns it: the header and (unless it is a lost-events header) the record bytes.</summary>
public readonly record struct Vevent(IommufdVeventHeader Header, byte[] Data);

/// <summary>enum iommu_hw_queue_type.</summary>
public static class IommuHwQueueType
{
    public const uint DEFAULT = 0;
    public const uint TEGRA241_CMDQV = 1;
}

/// <summary>struct iommu_hw_queue_alloc (40 bytes).</summary>
public sealed class IommuHwQueueAlloc
{
    public uint flags;
    public uint viommu_id;
    public uint type;
    public uint index;
    public uint out_hw_queue_id;
    public ulong nesting_parent_iova;
    public ulong length;
}
