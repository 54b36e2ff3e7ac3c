using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vfio;

namespace IommuSim.Uapi.Script;

/// <summary>The VFIO calls of the script language: the device cdev ioctls and the legacy container and group ioctls
/// (<see cref="VfioIoctls"/>, <see cref="UserProcess"/>).</summary>
internal static class VfioCalls
{
    public static IEnumerable<(string, CallSpec)> Calls()
    {
        var n = ArgKind.Number;
        // ---- VFIO device cdev ----
        yield return ("DEVICE_BIND_IOMMUFD", ScriptCalls.Spec("out_devid", ["device"], DeviceBind, ("device", ArgKind.Device), ("iommufd", n), ("flags", n)));
        yield return ("DEVICE_ATTACH_IOMMUFD_PT", ScriptCalls.Spec("pt_id", ["dev_id", "pt_id"], DeviceAttach,
            ("dev_id", n), ("pt_id", n), ("pasid", n), ("flags", ArgKind.Flags(("ATTACH_PASID", VfioConst.VFIO_DEVICE_ATTACH_PASID))), ("iommufd", n)));
        yield return ("DEVICE_DETACH_IOMMUFD_PT", ScriptCalls.Spec(null, ["dev_id"], DeviceDetach,
            ("dev_id", n), ("pasid", n), ("flags", ArgKind.Flags(("DETACH_PASID", VfioConst.VFIO_DEVICE_DETACH_PASID))), ("iommufd", n)));

        // ---- legacy VFIO: /dev/vfio/vfio (an iommufd in compat mode) and /dev/vfio/N ----
        yield return ("OPEN_CONTAINER", ScriptCalls.Spec("fd", [], (s, _) => Fd(s.Process.OpenContainer(out IommufdContext _))));
        yield return ("GET_API_VERSION", ScriptCalls.Spec("version", ["container"], (s, st) =>
        {
            var rc = s.Process.VfioGetApiVersion(Container(s, st), out int v);
            return rc != Errno.OK ? CallResult.Of(rc) : Out("version", (ulong)v);
        }, ("container", n)));
        yield return ("CHECK_EXTENSION", ScriptCalls.Spec("value", ["container", "extension"], (s, st) =>
        {
            var rc = s.Process.VfioCheckExtension(Container(s, st), s.Flags(st, "extension"), out int v);
            return rc != Errno.OK ? CallResult.Of(rc) : Out("value", (ulong)v);
        }, ("container", n), ("extension", ArgKind.Flags(
            ("TYPE1", VfioConst.VFIO_TYPE1_IOMMU), ("SPAPR_TCE", VfioConst.VFIO_SPAPR_TCE_IOMMU), ("TYPE1v2", VfioConst.VFIO_TYPE1v2_IOMMU),
            ("DMA_CC_IOMMU", VfioConst.VFIO_DMA_CC_IOMMU), ("EEH", VfioConst.VFIO_EEH), ("TYPE1_NESTING", VfioConst.VFIO_TYPE1_NESTING_IOMMU),
            ("SPAPR_TCE_v2", VfioConst.VFIO_SPAPR_TCE_v2_IOMMU), ("NOIOMMU", VfioConst.VFIO_NOIOMMU_IOMMU), ("UNMAP_ALL", VfioConst.VFIO_UNMAP_ALL),
            ("UPDATE_VADDR", VfioConst.VFIO_UPDATE_VADDR), ("DIRTY_PAGES", VfioIoctls.DirtyPagesExtension)))));
        yield return ("OPEN_GROUP", ScriptCalls.Spec("fd", ["group"], (s, st) =>
        {
            var rc = s.Process.OpenGroup((int)s.Num(st, "group"), out int fd);
            return rc != Errno.OK ? CallResult.Of(rc) : Fd(fd);
        }, ("group", n)));
        yield return ("GROUP_GET_STATUS", ScriptCalls.Spec("flags", ["group"], (s, st) =>
        {
            var status = new VfioGroupStatus();
            var rc = s.Process.GroupGetStatus((int)s.Num(st, "group"), status);
            return rc != Errno.OK ? CallResult.Of(rc) : Out("flags", status.flags);
        }, ("group", n)));
        yield return ("GROUP_SET_CONTAINER", ScriptCalls.Spec(null, ["group", "container"], (s, st) =>
            CallResult.Of(s.Process.GroupSetContainer((int)s.Num(st, "group"), (int)s.Num(st, "container"))), ("group", n), ("container", n)));
        yield return ("GROUP_UNSET_CONTAINER", ScriptCalls.Spec(null, ["group"], (s, st) => CallResult.Of(s.Process.GroupUnsetContainer((int)s.Num(st, "group"))), ("group", n)));
        yield return ("GROUP_GET_DEVICE_FD", ScriptCalls.Spec("fd", ["group", "device"], (s, st) =>
        {
            var rc = s.Process.GroupGetDeviceFd((int)s.Num(st, "group"), s.Raw(st, "device"), out int fd);
            return rc != Errno.OK ? CallResult.Of(rc) : Fd(fd);
        }, ("group", n), ("device", ArgKind.Device)));
        yield return ("SET_IOMMU", ScriptCalls.Spec(null, ["container", "type"], (s, st) => CallResult.Of(s.Process.VfioSetIommu(Container(s, st), s.Flags(st, "type"))),
            ("container", n), ("type", ArgKind.Flags(("TYPE1", VfioConst.VFIO_TYPE1_IOMMU), ("TYPE1v2", VfioConst.VFIO_TYPE1v2_IOMMU)))));
        yield return ("IOMMU_GET_INFO", ScriptCalls.Spec("iova_pgsizes", ["container"], IommuGetInfo, ("container", n), ("argsz", n)));
        yield return ("IOMMU_MAP_DMA", ScriptCalls.Spec(null, ["container", "vaddr", "iova", "size"], (s, st) => CallResult.Of(s.Process.VfioIommuMapDma(Container(s, st),
                new VfioIommuType1DmaMap
                {
                    argsz = s.U32(st, "argsz", VfioIommuType1DmaMap.MinSize),
                    flags = (uint)s.Flags(st, "flags", VfioConst.VFIO_DMA_MAP_FLAG_READ | VfioConst.VFIO_DMA_MAP_FLAG_WRITE),
                    vaddr = s.Num(st, "vaddr"), iova = s.Num(st, "iova"), size = s.Num(st, "size"),
                })),
            ("container", n), ("vaddr", n), ("iova", n), ("size", n), ("flags", ArgKind.FlagsOf(typeof(VfioConst), "VFIO_DMA_MAP_FLAG_")), ("argsz", n)));
        yield return ("IOMMU_UNMAP_DMA", ScriptCalls.Spec("size", ["container"], IommuUnmapDma, ("container", n), ("iova", n), ("size", n),
            ("flags", ArgKind.FlagsOf(typeof(VfioConst), "VFIO_DMA_UNMAP_FLAG_")), ("argsz", n)));
    }

    private static CallResult Out(string key, ulong v)
    {
        var r = new CallResult().Dec(key, v);
        r.Main = v;
        return r;
    }

    private static CallResult Fd(int fd) => Out("fd", (ulong)fd);

    private static int Container(ScriptSession s, Statement st) => (int)s.Num(st, "container");

    private static CallResult DeviceBind(ScriptSession s, Statement st)
    {
        var dev = s.Device(st);
        var ictx = s.Context(st, "iommufd");
        var c = new VfioDeviceBindIommufd { iommufd = st.Has("iommufd") ? (int)s.Num(st, "iommufd") : s.IommufdFd, flags = s.U32(st, "flags") };
        var rc = s.Process.VfioDeviceBindIommufd(dev, ictx, c, out int fd);
        if (rc != Errno.OK) return CallResult.Of(rc);
        var r = new CallResult().Dec("out_devid", c.out_devid).Dec("fd", (ulong)fd);
        r.Main = c.out_devid;
        return r;
    }

    private static CallResult DeviceAttach(ScriptSession s, Statement st)
    {
        var ictx = s.Context(st, "iommufd");
        uint devId = s.U32(st, "dev_id");
        uint flags = (uint)s.Flags(st, "flags");
        if (st.Has("pasid")) flags |= VfioConst.VFIO_DEVICE_ATTACH_PASID;
        var c = new VfioDeviceAttachIommufdPt { pt_id = s.U32(st, "pt_id"), flags = flags, pasid = s.U32(st, "pasid") };
        var rc = s.Process.VfioDeviceAttachIommufdPt(ictx, devId, c);
        return rc != Errno.OK ? CallResult.Of(rc) : Out("pt_id", c.pt_id);
    }

    private static CallResult DeviceDetach(ScriptSession s, Statement st)
    {
        var ictx = s.Context(st, "iommufd");
        uint devId = s.U32(st, "dev_id");
        uint flags = (uint)s.Flags(st, "flags");
        if (st.Has("pasid")) flags |= VfioConst.VFIO_DEVICE_DETACH_PASID;
        return CallResult.Of(s.Process.VfioDeviceDetachIommufdPt(ictx, devId,
            new VfioDeviceDetachIommufdPt { flags = flags, pasid = s.U32(st, "pasid") }));
    }

    private static CallResult IommuGetInfo(ScriptSession s, Statement st)
    {
        int container = Container(s, st);
        var info = new VfioIommuType1Info { argsz = s.U32(st, "argsz", 4096) };
        var rc = s.Process.VfioIommuGetInfo(container, info);
        if (rc != Errno.OK) return CallResult.Of(rc);
        var r = new CallResult().Dec("argsz", info.argsz).Dec("flags", info.flags).Hex("iova_pgsizes", info.iova_pgsizes).Dec("cap_offset", info.cap_offset);
        foreach (var cap in info.caps)
        {
            if (cap.id == VfioConst.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)
                r.Dec("nr_iovas", (ulong)cap.iova_ranges.Count).Text("iova_ranges", string.Join(",", cap.iova_ranges.Select(x => $"0x{x.start:x}-0x{x.end:x}")));
            else if (cap.id == VfioConst.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL)
                r.Dec("avail", cap.avail);
        }
        r.Main = info.iova_pgsizes;
        return r;
    }

    private static CallResult IommuUnmapDma(ScriptSession s, Statement st)
    {
        int container = Container(s, st);
        var u = new VfioIommuType1DmaUnmap
        {
            argsz = s.U32(st, "argsz", VfioIommuType1DmaUnmap.MinSize), flags = (uint)s.Flags(st, "flags"),
            iova = s.Num(st, "iova"), size = s.Num(st, "size"),
        };
        var rc = s.Process.VfioIommuUnmapDma(container, u);
        if (rc != Errno.OK) return CallResult.Of(rc);
        var r = CallResult.Of(rc).Hex("size", u.size);
        r.Main = u.size;
        return r;
    }
}
