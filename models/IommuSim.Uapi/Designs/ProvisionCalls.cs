using IommuSim.Uapi.Driver;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vfio;

namespace IommuSim.Uapi.Designs;

/// <summary>The host-side call sequences several designs share (iommufd IOAS setup, VFIO cdev attach).</summary>
internal static class ProvisionCalls
{
    public static ProvisionedDevice NewDevice(ProvisionedSystem sys, DeviceProvision d)
    {
        var spec = sys.Kernel.FindDevice(d.Rid) ?? throw new ArgumentException($"no device at {d.Rid} on the platform");
        var pd = new ProvisionedDevice(spec, d.Pasid);
        sys.Devices.Add(d.Rid, pd);
        return pd;
    }

    public static void Check(Errno rc, string what, DeviceProvision d)
    {
        if (rc != Errno.OK) throw new InvalidOperationException($"{d.Rid}: {what} failed with {rc}");
    }

    /// <summary>User memory backing a stage: 1 GiB pages for 1G leaves, else 2 MiB (so huge leaves are possible).</summary>
    public static ulong MemoryAlignment(StageSpec s) => s.PageSize == PageSize.Size1G ? 1UL << 30 : 2UL << 20;

    public static IommufdContext OpenIommufd(ProvisionedSystem sys)
    {
        sys.Process.OpenIommufd(out var ictx);
        return ictx;
    }

    /// <summary>IOAS_ALLOC, and OPTION HUGE_PAGES=0 when the stage is to use 4 KiB leaves only.</summary>
    public static uint NewIoas(IommufdContext ictx, StageSpec stage, DeviceProvision d)
    {
        var alloc = new IommuIoasAlloc();
        Check(ictx.IoasAlloc(alloc), "IOAS_ALLOC", d);
        if (stage.PageSize == PageSize.Size4K)
            Check(ictx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.SET, object_id = alloc.out_ioas_id, val64 = 0 }), "OPTION HUGE_PAGES=0", d);
        return alloc.out_ioas_id;
    }

    /// <summary>IOAS_MAP at a fixed IOVA, readable and writeable.</summary>
    public static void MapFixed(IommufdContext ictx, uint ioas, ulong va, ulong iova, ulong bytes, DeviceProvision d)
        => Check(ictx.IoasMap(new IommuIoasMap
        {
            ioas_id = ioas, user_va = va, length = bytes, iova = iova,
            flags = IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE,
        }), $"IOAS_MAP 0x{iova:x}", d);

    /// <summary>Opens the device's VFIO cdev and binds it to the iommufd; returns the file and the device id.</summary>
    public static (VfioDeviceFile File, uint DevId) OpenAndBind(ProvisionedSystem sys, IommufdContext ictx, ProvisionedDevice pd, DeviceProvision d)
    {
        Check(sys.Process.OpenDeviceCdev(pd.Spec, out int fd), "open VFIO cdev", d);
        var file = sys.Process.DeviceFile(fd)!;
        var bind = new VfioDeviceBindIommufd();
        Check(file.BindIommufd(ictx, bind), "VFIO_DEVICE_BIND_IOMMUFD", d);
        return (file, bind.out_devid);
    }

    /// <summary>VFIO_DEVICE_ATTACH_IOMMUFD_PT of the RID, or of the device's PASID when it has one; returns the attached pt id.</summary>
    public static uint AttachPt(VfioDeviceFile file, uint pt, DeviceProvision d)
    {
        var attach = new VfioDeviceAttachIommufdPt { pt_id = pt };
        if (d.Pasid is uint p)
        {
            attach.flags = VfioConst.VFIO_DEVICE_ATTACH_PASID;
            attach.pasid = p;
        }
        Check(file.AttachPt(attach), "VFIO_DEVICE_ATTACH_IOMMUFD_PT", d);
        return attach.pt_id;
    }

    /// <summary>VFIO cdev: bind, then attach the RID (to the IOAS: auto HWPT) or a PASID (to a PASID-compatible HWPT).</summary>
    public static void AttachCdev(ProvisionedSystem sys, IommufdContext ictx, ProvisionedDevice pd, DeviceProvision d, uint ptId, bool usePasidHwpt)
    {
        var (file, devId) = OpenAndBind(sys, ictx, pd, d);
        uint pt = ptId;
        if (usePasidHwpt && ictx.Lookup(ptId) is Ioas)
        {
            var alloc = new IommuHwptAlloc { dev_id = devId, pt_id = ptId, flags = IommuHwptAllocFlags.PASID };
            Check(ictx.HwptAlloc(alloc), "IOMMU_HWPT_ALLOC(PASID)", d);
            pt = alloc.out_hwpt_id;
        }
        pd.Context = ictx;
        pd.HwptId = AttachPt(file, pt, d);
        var hwpt = (HwptPaging)ictx.Lookup(pd.HwptId)!;
        pd.Table = (hwpt.PagingDomain as VtdPagingDomain)?.Table;
        pd.DomainId = hwpt.PagingDomain.DomainId;
    }
}
