using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iopt;
using IommuSim.Uapi.Vfio;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// The VFIO type1 container ioctls as iommufd answers them when /dev/vfio/vfio is an iommufd
/// (drivers/iommu/iommufd/vfio_compat.c). They act on the compat IOAS and return ENODEV without
/// one; type1 v1 is "large pages disabled", which is also what lets v1 unmap cut areas.
/// </summary>
public sealed partial class IommufdContext
{
    /// <summary>Size of the VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL capability, 8-byte aligned.</summary>
    private const uint DmaAvailCapSize = 16;

    public static int VfioGetApiVersion() => VfioConst.VFIO_API_VERSION;

    /// <summary>VFIO_CHECK_EXTENSION: returns the extension's value (≥ 0) or a negative errno.</summary>
    public int VfioCheckExtension(uint extension)
    {
        switch (extension)
        {
            case VfioConst.VFIO_TYPE1_IOMMU:
            case VfioConst.VFIO_TYPE1v2_IOMMU:
            case VfioConst.VFIO_UNMAP_ALL:
                return 1;
            case VfioConst.VFIO_DMA_CC_IOMMU:
                // Every HWPT of the compat IOAS enforces coherency: our devices are all coherent.
                return CompatIoas is null ? -(int)Errno.ENODEV : 1;
            case VfioConst.VFIO_NOIOMMU_IOMMU:
                return Kernel.Spec.NoIommu ? 1 : 0;
            default:
                return 0;
        }
    }

    /// <summary>VFIO_SET_IOMMU: TYPE1 or TYPE1v2 on the compat IOAS; v1 disables large pages.</summary>
    public Errno VfioSetIommu(uint type)
    {
        if (type != VfioConst.VFIO_TYPE1_IOMMU && type != VfioConst.VFIO_TYPE1v2_IOMMU) return Errno.EINVAL;
        if (CompatIoas is null) return Errno.ENODEV;
        return type == VfioConst.VFIO_TYPE1_IOMMU ? CompatIoas.Iopt.SetDisableLargePages() : Errno.OK;
    }

    /// <summary>VFIO_IOMMU_MAP_DMA: always a fixed IOVA.</summary>
    public Errno VfioMapDma(VfioIommuType1DmaMap map)
    {
        if (map.argsz < VfioIommuType1DmaMap.MinSize) return Errno.EINVAL;
        if ((map.flags & ~(VfioConst.VFIO_DMA_MAP_FLAG_READ | VfioConst.VFIO_DMA_MAP_FLAG_WRITE)) != 0) return Errno.EINVAL;
        var prot = ((map.flags & VfioConst.VFIO_DMA_MAP_FLAG_READ) != 0 ? Access.Read : Access.None)
                   | ((map.flags & VfioConst.VFIO_DMA_MAP_FLAG_WRITE) != 0 ? Access.Write : Access.None);
        if (CompatIoas is null) return Errno.ENODEV;
        if (prot == Access.None || map.size == 0) return Errno.EINVAL;
        if (map.iova >= ulong.MaxValue || map.size >= ulong.MaxValue) return Errno.EOVERFLOW;
        // iopt_map_user_pages → iopt_alloc_user_pages: vaddr + size must not wrap.
        if (map.vaddr + map.size < map.vaddr) return Errno.EOVERFLOW;
        if (map.size > ulong.MaxValue - Iopt.IoPagetable.PageSize) return Errno.EINVAL;
        var pages = new IoptPages(Mm, map.vaddr, map.size, (prot & Access.Write) != 0, PagesAccountMode);
        ulong iova = map.iova;
        return CompatIoas.Iopt.MapPages([new Iopt.IoPagetable.PagesElement(pages, 0, map.size)], ref iova, prot, allocIova: false);
    }

    /// <summary>
    /// VFIO_IOMMU_UNMAP_DMA: FLAG_ALL (with iova = size = 0) or a range. v1 cuts areas at the
    /// range's ends first; v2 needs whole areas (ENOENT). An empty range succeeds with size 0.
    /// </summary>
    public Errno VfioUnmapDma(VfioIommuType1DmaUnmap unmap)
    {
        if (unmap.argsz < VfioIommuType1DmaUnmap.MinSize) return Errno.EINVAL;
        if ((unmap.flags & ~VfioConst.VFIO_DMA_UNMAP_FLAG_ALL) != 0) return Errno.EINVAL;
        if (CompatIoas is null) return Errno.ENODEV;
        var iopt = CompatIoas.Iopt;
        Errno rc;
        ulong unmapped;
        if ((unmap.flags & VfioConst.VFIO_DMA_UNMAP_FLAG_ALL) != 0)
        {
            if (unmap.iova != 0 || unmap.size != 0) return Errno.EINVAL;
            rc = iopt.UnmapAll(out unmapped);
        }
        else
        {
            if (unmap.size == 0) return Errno.EINVAL;
            ulong last = unmap.iova + (unmap.size - 1);
            if (last < unmap.iova) return Errno.EOVERFLOW;
            if (iopt.FirstArea(unmap.iova, last) is null)
            {
                unmap.size = 0;
                return Errno.OK;
            }
            if (iopt.DisableLargePages)
            {
                rc = iopt.CutIova([unmap.iova, last + 1]);
                if (rc != Errno.OK) return rc;
            }
            rc = iopt.UnmapIova(unmap.iova, unmap.size, out unmapped);
        }
        if (rc == Errno.OK) unmap.size = unmapped;
        return rc;
    }

    /// <summary>
    /// VFIO_IOMMU_GET_INFO (iommufd_vfio_iommu_get_info): argsz is checked first, against the pre-capability struct
    /// (offsetofend(iova_pgsizes) = 16: EINVAL below), then the compat IOAS (ENODEV). Page sizes (AND of the domains',
    /// at least the alignment) and the capability chain IOVA_RANGE + DMA_AVAIL. A short argsz gets argsz = full size
    /// and cap_offset 0, and nothing past argsz is written (a 16-byte struct gets no cap_offset at all).
    /// </summary>
    public Errno VfioIommuGetInfo(VfioIommuType1Info info)
    {
        if (info.argsz < VfioIommuType1Info.PreCapsSize) return Errno.EINVAL;
        if (CompatIoas is null) return Errno.ENODEV;
        var iopt = CompatIoas.Iopt;
        ulong pgsizes = ulong.MaxValue;
        foreach (var d in iopt.Domains) pgsizes &= d.PgsizeBitmap;
        if ((pgsizes & (Iopt.IoPagetable.PageSize - 1)) != 0)
            pgsizes = (pgsizes & ~(Iopt.IoPagetable.PageSize - 1)) | Iopt.IoPagetable.PageSize;
        pgsizes = Math.Max(pgsizes, iopt.IovaAlignment);

        info.flags = VfioConst.VFIO_IOMMU_INFO_PGSIZES | VfioConst.VFIO_IOMMU_INFO_CAPS;
        info.iova_pgsizes = pgsizes;
        info.cap_offset = 0;
        info.caps = [];
        var ranges = iopt.UsableRanges().Select(r => (r.Start, r.Last)).ToList();
        uint total = VfioIommuType1Info.MinSize;
        uint iovaCapSize = 16 + 16 * (uint)ranges.Count;
        if (info.argsz >= total + iovaCapSize)
            info.caps.Add(new VfioInfoCap(VfioConst.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, total, ranges, 0));
        total += iovaCapSize;
        if (info.argsz >= total + DmaAvailCapSize)
            info.caps.Add(new VfioInfoCap(VfioConst.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, total, [], ushort.MaxValue));
        total += DmaAvailCapSize;
        // copy_to_user of min(argsz, sizeof(info)): cap_offset lies past a 16-byte struct.
        if (info.argsz >= total && info.argsz >= VfioIommuType1Info.MinSize) info.cap_offset = VfioIommuType1Info.MinSize;
        info.argsz = total;
        return Errno.OK;
    }
}
