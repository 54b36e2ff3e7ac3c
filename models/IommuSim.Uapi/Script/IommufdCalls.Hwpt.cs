using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Script;

/// <summary>The iommufd ioctls on hardware page tables, the hardware info, fault queues and the vIOMMU.</summary>
internal static partial class IommufdCalls
{
    private static IEnumerable<(string, CallSpec)> HwptCalls()
    {
        var n = ArgKind.Number;
        yield return Ioctl("HWPT_ALLOC", "out_hwpt_id", ["dev_id", "pt_id"], HwptAllocIn,
            (_, _, c, rc) => OnOk(rc, r => r.Dec("out_hwpt_id", c.out_hwpt_id).Bound(c.out_hwpt_id)),
            ("flags", ArgKind.FlagsOf(typeof(IommuHwptAllocFlags))), ("dev_id", n), ("pt_id", n), ("data_type", ArgKind.FlagsOf(typeof(IommuHwptDataType))),
            ("fault_id", n), ("pgtbl_addr", n), ("addr_width", n), ("vtd_flags", ArgKind.FlagsOf(typeof(VtdS1Flags), "", nameof(VtdS1Flags.None))),
            ("ste0", n), ("ste1", n));
        // entry_num is in/out: the entries handled, reported on failure too.
        yield return Ioctl("HWPT_INVALIDATE", "entry_num", ["hwpt_id"], HwptInvalidateIn,
            (s, st, c, rc) => ViommuInvalidateOut(s, st, CallResult.Of(rc).Dec("entry_num", c.entry_num).Bound(c.entry_num)),
            ("hwpt_id", n), ("data_type", ArgKind.FlagsOf(typeof(IommuHwptInvalidateDataType))), ("entries", ArgKind.Entries), ("entry_len", n), ("entry_num", n),
            ("cmds", SmmuCmdsKind.Instance), ("__reserved", n));
        yield return Ioctl("HWPT_SET_DIRTY_TRACKING", null, ["hwpt_id"],
            (s, st) => new IommuHwptSetDirtyTracking { hwpt_id = s.U32(st, "hwpt_id"), flags = (uint)s.Flags(st, "flags") },
            (_, _, _, rc) => CallResult.Of(rc), ("hwpt_id", n), ("flags", ArgKind.FlagsOf(typeof(IommuHwptSetDirtyTrackingFlags))));
        yield return Ioctl("HWPT_GET_DIRTY_BITMAP", "dirty", ["hwpt_id", "iova", "length", "page_size"], (s, st) => new IommuHwptGetDirtyBitmap
        {
            hwpt_id = s.U32(st, "hwpt_id"), iova = s.Num(st, "iova"), length = s.Num(st, "length"),
            page_size = s.Num(st, "page_size"), flags = (uint)s.Flags(st, "flags"),
        }, HwptGetDirtyBitmapOut, ("hwpt_id", n), ("iova", n), ("length", n), ("page_size", n), ("flags", ArgKind.FlagsOf(typeof(IommuHwptGetDirtyBitmapFlags))));
        yield return Ioctl("GET_HW_INFO", "out_capabilities", ["dev_id"], GetHwInfoIn,
            (_, _, c, rc) => OnOk(rc, r => r.Dec("data_len", c.data_len).Dec("out_data_type", c.out_data_type).Hex("out_capabilities", c.out_capabilities)
                .Dec("out_max_pasid_log2", c.out_max_pasid_log2).Bound(c.out_capabilities)),
            ("dev_id", n), ("data_len", n), ("flags", ArgKind.FlagsOf(typeof(IommuHwInfoFlags))),
            ("in_data_type", ArgKind.FlagsOf(typeof(IommuHwInfoType), "", nameof(IommuHwInfoType.NONE))));
        yield return Ioctl("FAULT_QUEUE_ALLOC", "out_fault_id", [], (s, st) => new IommuFaultAlloc { flags = s.U32(st, "flags") },
            (_, _, c, rc) => OnOk(rc, r => r.Dec("out_fault_id", c.out_fault_id).Dec("out_fault_fd", c.out_fault_fd).Bound(c.out_fault_id)), ("flags", n));
        foreach (var call in ViommuCalls()) yield return call;
    }

    private static IommuHwptAlloc HwptAllocIn(ScriptSession s, Statement st)
    {
        var c = new IommuHwptAlloc
        {
            flags = (uint)s.Flags(st, "flags"), dev_id = s.U32(st, "dev_id"), pt_id = s.U32(st, "pt_id"),
            data_type = (uint)s.Flags(st, "data_type"), fault_id = s.U32(st, "fault_id"),
        };
        if (st.Has("pgtbl_addr") || st.Has("addr_width") || st.Has("vtd_flags"))
            c.data = new IommuHwptVtdS1 { pgtbl_addr = s.Num(st, "pgtbl_addr"), addr_width = s.U32(st, "addr_width", 48), flags = s.Flags(st, "vtd_flags") };
        // IOMMU_HWPT_DATA_ARM_SMMUV3: the guest STE's two used words.
        if (st.Has("ste0") || st.Has("ste1"))
            c.data_arm_smmuv3 = new IommuHwptArmSmmuv3 { ste = [s.Num(st, "ste0"), s.Num(st, "ste1")] };
        return c;
    }

    private static IommuHwptInvalidate HwptInvalidateIn(ScriptSession s, Statement st)
    {
        ArgKinds.TryEntries(st.Has("entries") ? s.Raw(st, "entries") : "", out var entries);
        var c = new IommuHwptInvalidate
        {
            hwpt_id = s.U32(st, "hwpt_id"),
            data_type = (uint)s.Flags(st, "data_type"),
            entry_len = s.U32(st, "entry_len", IommufdContext.VtdS1InvalidateEntryLen),
            entry_num = st.Has("entry_num") ? s.U32(st, "entry_num") : (uint)entries.Count,
            data = entries.Count == 0 ? null : entries.Select(e => new IommuHwptVtdS1Invalidate { addr = e.Addr, npages = e.Npages, flags = e.Flags }).ToArray(),
            __reserved = s.U32(st, "__reserved"),
        };
        return st.Has("cmds") ? ViommuInvalidateIn(s, st, c) : c;
    }

    private static CallResult HwptGetDirtyBitmapOut(ScriptSession s, Statement st, IommuHwptGetDirtyBitmap c, Errno rc)
    {
        var r = CallResult.Of(rc);
        if (!r.Ok) return r;
        ulong dirty = 0;
        foreach (var (_, w) in c.data.NonZero) dirty += (ulong)System.Numerics.BitOperations.PopCount(w);
        r.Dec("dirty", dirty);
        // The whole bitmap when it is small; beyond 64 words (4096 pages) only the non-zero words, as INDEX/WORD.
        if (c.data.Length <= 64)
        {
            var words = new List<string>();
            for (ulong i = 0; i < c.data.Length; i++) words.Add($"0x{c.data[i]:x}");
            r.Text("data", string.Join(",", words));
        }
        else r.Dec("words", c.data.Length).Text("nonzero", string.Join(",", c.data.NonZero.Select(w => $"{w.Key}/0x{w.Value:x}")));
        return r.Bound(dirty);
    }

    private static IommuHwInfo GetHwInfoIn(ScriptSession s, Statement st)
    {
        uint len = s.U32(st, "data_len", IommufdContext.HwInfoVtdLen);
        // The caller's buffer (data_uptr) is data_len bytes of its memory; the model keeps at most its first 64 KiB
        // (a data_len near 2^32 then costs nothing: what lies beyond is only zero-filled by the kernel).
        return new IommuHwInfo
        {
            dev_id = s.U32(st, "dev_id"), flags = (uint)s.Flags(st, "flags"), data_len = len, data = new byte[Math.Min(len, 1u << 16)],
            out_data_type = (uint)s.Flags(st, "in_data_type"),
        };
    }
}
