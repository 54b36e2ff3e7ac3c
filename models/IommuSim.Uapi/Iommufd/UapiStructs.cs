// The ioctl argument structs of include/uapi/linux/iommufd.h, with the kernel's field names so
// that scripts, tests and strace output read the same. Each is in/out as in the kernel: the
// caller fills the inputs, the ioctl fills the out_ fields (and the in/out ones it documents).
// The size field is not modelled: these structs are always complete.
#pragma warning disable CA1051 // uAPI structs are plain field bags, like their C originals

namespace IommuSim.Uapi.Iommufd;

public sealed class IommuDestroy { public uint id; }

public sealed class IommuIoasAlloc
{
    public uint flags;
    public uint out_ioas_id;
}

public struct IommuIovaRange
{
    public ulong start;
    public ulong last;
}

public sealed class IommuIoasIovaRanges
{
    public uint ioas_id;
    /// <summary>In: capacity of <see cref="allowed_iovas"/>; out: the number of ranges.</summary>
    public uint num_iovas;
    public uint __reserved;
    public IommuIovaRange[] allowed_iovas = [];
    public ulong out_iova_alignment;
}

public sealed class IommuIoasAllowIovas
{
    public uint ioas_id;
    public uint num_iovas;
    public uint __reserved;
    public IommuIovaRange[] allowed_iovas = [];
}

public static class IommuIoasMapFlags
{
    public const uint FIXED_IOVA = 1;
    public const uint WRITEABLE = 2;
    public const uint READABLE = 4;
}

public sealed class IommuIoasMap
{
    public uint flags;
    public uint ioas_id;
    public uint __reserved;
    public ulong user_va;
    public ulong length;
    public ulong iova;
}

/// <summary>struct iommu_ioas_map_file: maps [start, start + length) of a memfd (fd) into an IOAS.</summary>
public sealed class IommuIoasMapFile
{
    public uint flags;
    public uint ioas_id;
    public int fd;
    public ulong start;
    public ulong length;
    public ulong iova;
}

public sealed class IommuIoasCopy
{
    public uint flags;
    public uint dst_ioas_id;
    public uint src_ioas_id;
    public ulong length;
    public ulong dst_iova;
    public ulong src_iova;
}

public sealed class IommuIoasUnmap
{
    public uint ioas_id;
    public ulong iova;
    /// <summary>In: bytes to unmap; out: bytes unmapped.</summary>
    public ulong length;
}

public static class IommuOptionId
{
    public const uint RLIMIT_MODE = 0;
    public const uint HUGE_PAGES = 1;
}

public static class IommuOptionOp
{
    public const ushort SET = 0;
    public const ushort GET = 1;
}

public sealed class IommuOption
{
    public uint option_id;
    public ushort op;
    public ushort __reserved;
    public uint object_id;
    public ulong val64;
}

public static class IommuVfioIoasOp
{
    public const ushort GET = 0;
    public const ushort SET = 1;
    public const ushort CLEAR = 2;
}

public sealed class IommuVfioIoas
{
    public uint ioas_id;
    public ushort op;
    public ushort __reserved;
}

public static class IommuHwptAllocFlags
{
    public const uint NEST_PARENT = 1;
    public const uint DIRTY_TRACKING = 2;
    public const uint FAULT_ID_VALID = 4;
    public const uint PASID = 8;
}

public static class IommuHwptDataType
{
    public const uint NONE = 0;
    public const uint VTD_S1 = 1;
    public const uint ARM_SMMUV3 = 2;
}

/// <summary>struct iommu_hwpt_vtd_s1.</summary>
public sealed class IommuHwptVtdS1
{
    public ulong flags;
    public ulong pgtbl_addr;
    public uint addr_width;
    public uint __reserved;
}

public sealed class IommuHwptAlloc
{
    public uint flags;
    public uint dev_id;
    public uint pt_id;
    public uint out_hwpt_id;
    public uint __reserved;
    public uint data_type;
    /// <summary>data_uptr/data_len: the driver data, null for none.</summary>
    public IommuHwptVtdS1? data;
    /// <summary>data_uptr/data_len for IOMMU_HWPT_DATA_ARM_SMMUV3 (a nested HWPT on an SMMUv3 vIOMMU), null for none.</summary>
    public IommuHwptArmSmmuv3? data_arm_smmuv3;
    public uint fault_id;
    public uint __reserved2;
}

public static class IommuHwInfoType
{
    public const uint NONE = 0;
    /// <summary>IOMMU_HW_INFO_TYPE_DEFAULT (= NONE): "whatever the driver reports".</summary>
    public const uint DEFAULT = 0;
    public const uint INTEL_VTD = 1;
    public const uint ARM_SMMUV3 = 2;
}

/// <summary>enum iommufd_hw_info_flags.</summary>
public static class IommuHwInfoFlags
{
    /// <summary>IOMMU_HW_INFO_FLAG_INPUT_TYPE: in_data_type names the info type asked for.</summary>
    public const uint INPUT_TYPE = 1;
}

public static class IommuHwCap
{
    public const ulong DIRTY_TRACKING = 1;
    public const ulong PCI_PASID_EXEC = 2;
    public const ulong PCI_PASID_PRIV = 4;
}

public sealed class IommuHwInfo
{
    public uint flags;
    public uint dev_id;
    /// <summary>In: the caller's buffer length; out: the kernel's data length.</summary>
    public uint data_len;
    /// <summary>The caller's buffer (struct iommu_hw_info_vtd: flags, __reserved, cap_reg, ecap_reg); null for none.</summary>
    public byte[]? data;
    /// <summary>The union in_data_type/out_data_type: in with INPUT_TYPE, always out.</summary>
    public uint out_data_type;
    public byte out_max_pasid_log2;
    public ulong out_capabilities;
}

public static class IommuHwptSetDirtyTrackingFlags
{
    public const uint ENABLE = 1;
}

public sealed class IommuHwptSetDirtyTracking
{
    public uint flags;
    public uint hwpt_id;
}

public static class IommuHwptGetDirtyBitmapFlags
{
    public const uint NO_CLEAR = 1;
}

public sealed class IommuHwptGetDirtyBitmap
{
    public uint hwpt_id;
    public uint flags;
    public ulong iova;
    public ulong length;
    public ulong page_size;
    /// <summary>Out: bit n set when iova + n·page_size is dirty (the user's bitmap, held sparsely: a 2^48-byte range
    /// at 4 KiB is a 2^36-bit bitmap, of which only the words over mapped pages can be non-zero).</summary>
    public DirtyBitmapWords data = new(0);
}

/// <summary>The u64 words of a dirty bitmap, of which only the non-zero ones are stored.</summary>
public sealed class DirtyBitmapWords(ulong length)
{
    private readonly SortedDictionary<ulong, ulong> _words = [];

    /// <summary>Words the user's bitmap has (⌈bits / 64⌉).</summary>
    public ulong Length { get; } = length;

    /// <summary>Word <paramref name="index"/> (0 unless a bit in it is set).</summary>
    public ulong this[ulong index] => _words.GetValueOrDefault(index);

    /// <summary>The non-zero words in ascending order.</summary>
    public IEnumerable<KeyValuePair<ulong, ulong>> NonZero => _words;

    public void SetBit(ulong bit) => _words[bit / 64] = this[bit / 64] | (1UL << (int)(bit % 64));

    /// <summary>Sets bits [first, last].</summary>
    public void SetBits(ulong first, ulong last)
    {
        for (ulong b = first; b <= last; b++)
        {
            if (b % 64 == 0 && last - b >= 63)
            {
                _words[b / 64] = ulong.MaxValue;
                b += 63;
            }
            else SetBit(b);
            if (b == ulong.MaxValue) break;
        }
    }
}

public static class IommuHwptInvalidateDataType
{
    public const uint VTD_S1 = 0;
    public const uint VIOMMU_ARM_SMMUV3 = 1;
}

public static class IommuVtdInvFlags
{
    public const uint LEAF = 1;
}

/// <summary>struct iommu_hwpt_vtd_s1_invalidate.</summary>
public struct IommuHwptVtdS1Invalidate
{
    public ulong addr;
    public ulong npages;
    public uint flags;
    public uint __reserved;
}

public sealed class IommuHwptInvalidate
{
    public uint hwpt_id;
    public uint data_type;
    public uint entry_len;
    /// <summary>In: entries in <see cref="data"/>; out: entries handled.</summary>
    public uint entry_num;
    public IommuHwptVtdS1Invalidate[]? data;
    /// <summary>The entries for IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 (raw SMMUv3 commands), null for none.</summary>
    public IommuViommuArmSmmuv3Invalidate[]? data_arm_smmuv3;
    public uint __reserved;
}

public sealed class IommuFaultAlloc
{
    public uint flags;
    public uint out_fault_id;
    public uint out_fault_fd;
}

/// <summary>struct iommu_hwpt_pgfault: one fault as read() from a fault fd.</summary>
public sealed class IommuHwptPgfault
{
    public const uint FLAGS_PASID_VALID = 1;
    public const uint FLAGS_LAST_PAGE = 2;
    public const uint PERM_READ = 1;
    public const uint PERM_WRITE = 2;
    public const uint PERM_EXEC = 4;
    public const uint PERM_PRIV = 8;

    public uint flags;
    public uint dev_id;
    public uint pasid;
    public uint grpid;
    public uint perm;
    public ulong addr;
    public uint length;
    public uint cookie;
}

/// <summary>struct iommu_hwpt_page_response, written to a fault fd.</summary>
public sealed class IommuHwptPageResponse
{
    public const uint CODE_SUCCESS = 0;
    public const uint CODE_INVALID = 1;

    public uint cookie;
    public uint code;
}
