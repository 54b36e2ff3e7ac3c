using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Memory;
using IommuSim.Uapi.Vfio;
using IommuSim.Uapi.Vm;

namespace IommuSim.Cli.UapiScript;

/// <summary>A call the script language knows: its keys, which are required, what NAME = binds, and how to run it.</summary>
internal sealed record CallSpec(
    IReadOnlyDictionary<string, ArgKind> Keys,
    IReadOnlyList<string> Required,
    string? Binds,
    Func<ScriptSession, Statement, CallResult> Run);

/// <summary>
/// The calls of spec/uapi-script.md: iommufd ioctls, the VFIO cdev and legacy container/group
/// ioctls, process and guest helpers, DMA and time. Each maps script keys onto the kernel struct
/// fields of the same name and prints the struct's out fields.
/// </summary>
internal static class ScriptCalls
{
    private static readonly (string, ulong)[] MapFlagNames = [("FIXED_IOVA", 1), ("WRITEABLE", 2), ("READABLE", 4)];
    private static readonly (string, ulong)[] ProtNames = [("READ", 1), ("WRITE", 2)];

    public static bool IsResultWord(string w) => w is "OK" or "FAULT" || Enum.TryParse<Errno>(w, out var e) && e != Errno.OK;

    /// <summary>
    /// iommufd's ioctl dispatch (iommufd_fops_ioctl): the user struct's <c>size</c> must reach the
    /// command's minimum (the end of its first-version fields) or the call fails with EINVAL before
    /// anything runs; a larger struct is accepted only if the bytes the kernel does not know are
    /// zero (copy_struct_from_user), else E2BIG. Values: (ioctl nr, minimum size, current size) from
    /// include/uapi/linux/iommufd.h.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, (int Nr, int MinSize, int Size)> IommufdStructs = new Dictionary<string, (int, int, int)>(StringComparer.Ordinal)
    {
        ["DESTROY"] = (0x80, 8, 8),
        ["IOAS_ALLOC"] = (0x81, 12, 12),
        ["IOAS_ALLOW_IOVAS"] = (0x82, 24, 24),
        ["IOAS_COPY"] = (0x83, 40, 40),
        ["IOAS_IOVA_RANGES"] = (0x84, 32, 32),
        ["IOAS_MAP"] = (0x85, 40, 40),
        ["IOAS_UNMAP"] = (0x86, 24, 24),
        ["OPTION"] = (0x87, 24, 24),
        ["VFIO_IOAS"] = (0x88, 12, 12),
        ["HWPT_ALLOC"] = (0x89, 24, 48),
        ["GET_HW_INFO"] = (0x8a, 32, 40),   // offsetofend(__reserved[3]); out_capabilities ends at 40
        ["HWPT_SET_DIRTY_TRACKING"] = (0x8b, 16, 16),
        ["HWPT_GET_DIRTY_BITMAP"] = (0x8c, 48, 48),
        ["HWPT_INVALIDATE"] = (0x8d, 32, 32),
        ["FAULT_QUEUE_ALLOC"] = (0x8e, 16, 16),
        ["IOAS_MAP_FILE"] = (0x8f, 40, 40),
        ["VIOMMU_ALLOC"] = (0x90, 24, 40),  // offsetofend(out_viommu_id); data_len, __reserved, data_uptr (v6.16) end at 40
        ["VDEVICE_ALLOC"] = (0x91, 24, 24),
    };

    // Declared after IommufdStructs: static fields initialise in text order.
    public static readonly IReadOnlyDictionary<string, CallSpec> Table = WithFieldWidths(WithStructSizes(Build()));

    /// <summary>Gives every key the width of the uAPI field it fills (<see cref="ArgKinds.WithWidth"/>): a wider
    /// value is a parse error, never a silent truncation.</summary>
    private static Dictionary<string, CallSpec> WithFieldWidths(Dictionary<string, CallSpec> table)
    {
        foreach (var (name, spec) in table.ToList())
        {
            var keys = spec.Keys.ToDictionary(k => k.Key, k => ArgKinds.WithWidth(name, k.Key, k.Value), StringComparer.Ordinal);
            table[name] = spec with { Keys = keys };
        }
        return table;
    }

    /// <summary>Adds the optional <c>size</c> (bytes the caller passes) and <c>trailing</c> (non-zero
    /// bytes beyond the kernel's struct) keys to every iommufd call, checked before the call runs.</summary>
    private static Dictionary<string, CallSpec> WithStructSizes(Dictionary<string, CallSpec> table)
    {
        foreach (var (name, (_, min, size)) in IommufdStructs)
        {
            var spec = table[name];
            // size: the struct's u32 size field; trailing: how many unknown non-zero bytes follow the kernel's struct.
            var keys = new Dictionary<string, ArgKind>(spec.Keys, StringComparer.Ordinal) { ["size"] = new NumberKind(32), ["trailing"] = ArgKind.Number };
            var run = spec.Run;
            table[name] = spec with
            {
                Keys = keys,
                Run = (s, st) =>
                {
                    ulong user = s.Num(st, "size", (ulong)size);
                    if (user < (ulong)min) return CallResult.Of(Errno.EINVAL);
                    if (user > (ulong)size && s.Num(st, "trailing") != 0) return CallResult.Of(Errno.E2BIG);
                    return run(s, st);
                },
            };
        }
        // A raw ioctl by number: what iommufd does with a command it has no entry for.
        table["IOCTL"] = Spec(null, ["nr"], (s, st) =>
        {
            ulong nr = s.Num(st, "nr");
            bool known = IommufdStructs.Values.Any(v => (ulong)v.Nr == nr);
            // A known command reaching here carries no struct (size 0): below every minimum.
            return CallResult.Of(known ? Errno.EINVAL : Errno.ENOTTY);
        }, ("nr", ArgKind.Number), ("size", ArgKind.Number));
        return table;
    }

    private static CallSpec Spec(string? binds, string[] required, Func<ScriptSession, Statement, CallResult> run, params (string Key, ArgKind Kind)[] keys)
        => new(keys.ToDictionary(k => k.Key, k => k.Kind, StringComparer.Ordinal), required, binds, run);

    private static Dictionary<string, CallSpec> Build()
    {
        var n = ArgKind.Number;
        return new Dictionary<string, CallSpec>(StringComparer.Ordinal)
        {
            // ---- process and guest helpers ----
            ["MMAP"] = Spec("va", ["length"], Mmap, ("length", n), ("prot", ArgKind.Flags(ProtNames)), ("fd", n), ("offset", n)),
            ["MEMFD_CREATE"] = Spec("fd", ["size"], MemfdCreate, ("size", n)),
            ["VM_CREATE"] = Spec("va", ["memory"], VmCreate, ("memory", n)),
            ["GUEST_PGTABLE_ALLOC"] = Spec("pgtbl_addr", ["vm"], GuestPgtableAlloc, ("vm", n), ("levels", n)),
            ["GUEST_MAP"] = Spec(null, ["pgtable", "vm", "iova", "gpa", "length"], GuestMap,
                ("pgtable", n), ("vm", n), ("iova", n), ("gpa", n), ("length", n), ("flags", ArgKind.Flags(MapFlagNames)), ("pagesize", ArgKind.PageSize)),
            ["GUEST_UNMAP"] = Spec(null, ["pgtable", "vm", "iova", "length"], GuestUnmap, ("pgtable", n), ("vm", n), ("iova", n), ("length", n)),
            ["DMA"] = Spec(null, ["device", "iova"], Dma, ("device", ArgKind.Device), ("pasid", n), ("iova", n), ("bytes", n), ("op", ArgKind.Op)),
            ["ADVANCE"] = Spec(null, ["ns"], Advance, ("ns", n)),
            ["PROCESS"] = Spec(null, [], Process, ("memlock", ArgKind.Flags(("unlimited", ulong.MaxValue))), ("cap_ipc_lock", n)),
            ["CLOSE"] = Spec(null, ["fd"], (s, st) => CallResult.Of(s.Process.Close((int)s.Num(st, "fd"))), ("fd", n)),

            // ---- iommufd ----
            ["IOAS_ALLOC"] = Spec("out_ioas_id", [], IoasAlloc, ("flags", n)),
            ["IOAS_MAP"] = Spec("iova", ["ioas_id", "user_va", "length"], IoasMap,
                ("ioas_id", n), ("user_va", n), ("length", n), ("iova", n), ("flags", ArgKind.Flags(MapFlagNames))),
            ["IOAS_MAP_FILE"] = Spec("iova", ["ioas_id", "fd", "length"], IoasMapFile,
                ("ioas_id", n), ("fd", n), ("start", n), ("length", n), ("iova", n), ("flags", ArgKind.Flags(MapFlagNames))),
            ["IOAS_COPY"] = Spec("dst_iova", ["dst_ioas_id", "src_ioas_id", "length", "src_iova"], IoasCopy,
                ("dst_ioas_id", n), ("src_ioas_id", n), ("length", n), ("dst_iova", n), ("src_iova", n), ("flags", ArgKind.Flags(MapFlagNames))),
            ["IOAS_UNMAP"] = Spec("length", ["ioas_id", "iova", "length"], IoasUnmap, ("ioas_id", n), ("iova", n), ("length", n)),
            ["IOAS_IOVA_RANGES"] = Spec("num_iovas", ["ioas_id"], IoasIovaRanges, ("ioas_id", n), ("num_iovas", n)),
            ["IOAS_ALLOW_IOVAS"] = Spec(null, ["ioas_id", "ranges"], IoasAllowIovas, ("ioas_id", n), ("ranges", ArgKind.Ranges)),
            ["OPTION"] = Spec("val64", ["option_id", "op"], Option,
                ("option_id", ArgKind.Flags(("RLIMIT_MODE", 0), ("HUGE_PAGES", 1))), ("op", ArgKind.Flags(("SET", 0), ("GET", 1))),
                ("object_id", n), ("val64", n)),
            ["DESTROY"] = Spec(null, ["id"], (s, st) => CallResult.Of(s.Ctx.Destroy(new IommuDestroy { id = s.U32(st, "id") })), ("id", n)),
            ["VFIO_IOAS"] = Spec("ioas_id", ["op"], VfioIoas, ("ioas_id", n), ("op", ArgKind.Flags(("GET", 0), ("SET", 1), ("CLEAR", 2)))),
            ["HWPT_ALLOC"] = Spec("out_hwpt_id", ["dev_id", "pt_id"], HwptAlloc,
                ("flags", ArgKind.Flags(("NEST_PARENT", 1), ("DIRTY_TRACKING", 2), ("FAULT_ID_VALID", 4), ("PASID", 8))),
                ("dev_id", n), ("pt_id", n), ("data_type", ArgKind.Flags(("NONE", 0), ("VTD_S1", 1), ("ARM_SMMUV3", 2))),
                ("fault_id", n), ("pgtbl_addr", n), ("addr_width", n), ("vtd_flags", ArgKind.Flags(("SRE", 1), ("EAFE", 2), ("WPE", 4)))),
            ["HWPT_INVALIDATE"] = Spec("entry_num", ["hwpt_id"], HwptInvalidate,
                ("hwpt_id", n), ("data_type", ArgKind.Flags(("VTD_S1", 0), ("VIOMMU_ARM_SMMUV3", 1))), ("entries", ArgKind.Entries),
                ("entry_len", n), ("entry_num", n)),
            ["HWPT_SET_DIRTY_TRACKING"] = Spec(null, ["hwpt_id"], HwptSetDirtyTracking, ("hwpt_id", n), ("flags", ArgKind.Flags(("ENABLE", 1)))),
            ["HWPT_GET_DIRTY_BITMAP"] = Spec("dirty", ["hwpt_id", "iova", "length", "page_size"], HwptGetDirtyBitmap,
                ("hwpt_id", n), ("iova", n), ("length", n), ("page_size", n), ("flags", ArgKind.Flags(("NO_CLEAR", 1)))),
            ["GET_HW_INFO"] = Spec("out_capabilities", ["dev_id"], GetHwInfo, ("dev_id", n), ("data_len", n),
                ("flags", ArgKind.Flags(("INPUT_TYPE", 1))), ("in_data_type", ArgKind.Flags(("DEFAULT", 0), ("INTEL_VTD", 1), ("ARM_SMMUV3", 2)))),
            ["FAULT_QUEUE_ALLOC"] = Spec("out_fault_id", [], FaultQueueAlloc, ("flags", n)),
            ["FAULT_READ"] = Spec("cookie", ["fault_id"], FaultRead, ("fault_id", n), ("count", n)),
            ["FAULT_RESPOND"] = Spec(null, ["fault_id", "cookie"], FaultRespond, ("fault_id", n), ("cookie", n),
                ("code", ArgKind.Flags(("SUCCESS", 0), ("INVALID", 1)))),
            ["VIOMMU_ALLOC"] = Spec("out_viommu_id", ["dev_id", "hwpt_id"], ViommuAlloc, ("flags", n),
                ("type", ArgKind.Flags(("DEFAULT", 0), ("ARM_SMMUV3", 1), ("TEGRA241_CMDQV", 2), ("INTEL_VTD", 0x100))), ("dev_id", n), ("hwpt_id", n)),
            ["VDEVICE_ALLOC"] = Spec("out_vdevice_id", ["viommu_id", "dev_id", "virt_id"], VdeviceAlloc, ("viommu_id", n), ("dev_id", n), ("virt_id", n)),

            // ---- in-kernel access (the selftest's mock access): pinned pages lock their areas ----
            ["ACCESS_CREATE"] = Spec("access_id", ["ioas_id"], (s, st) =>
            {
                var rc = s.Ctx.AccessCreate(s.U32(st, "ioas_id"), out uint id);
                var r = CallResult.Of(rc);
                if (rc == Errno.OK) { r.Dec("access_id", id); r.Main = id; }
                return r;
            }, ("ioas_id", n)),
            ["ACCESS_PIN"] = Spec(null, ["access_id", "iova", "length"], (s, st) =>
                CallResult.Of(s.Ctx.Get(s.U32(st, "access_id"), out IommufdAccess a) is var rc && rc != Errno.OK ? rc : a.Pin(s.Num(st, "iova"), s.Num(st, "length"))),
                ("access_id", n), ("iova", n), ("length", n)),
            ["ACCESS_UNPIN"] = Spec(null, ["access_id", "iova", "length"], (s, st) =>
                CallResult.Of(s.Ctx.Get(s.U32(st, "access_id"), out IommufdAccess a) is var rc && rc != Errno.OK ? rc : a.Unpin(s.Num(st, "iova"), s.Num(st, "length"))),
                ("access_id", n), ("iova", n), ("length", n)),

            // ---- VFIO device cdev ----
            ["DEVICE_BIND_IOMMUFD"] = Spec("out_devid", ["device"], DeviceBind, ("device", ArgKind.Device), ("iommufd", n), ("flags", n)),
            ["DEVICE_ATTACH_IOMMUFD_PT"] = Spec("pt_id", ["dev_id", "pt_id"], DeviceAttach,
                ("dev_id", n), ("pt_id", n), ("pasid", n), ("flags", ArgKind.Flags(("ATTACH_PASID", 1))), ("iommufd", n)),
            ["DEVICE_DETACH_IOMMUFD_PT"] = Spec(null, ["dev_id"], DeviceDetach,
                ("dev_id", n), ("pasid", n), ("flags", ArgKind.Flags(("DETACH_PASID", 1))), ("iommufd", n)),

            // ---- legacy VFIO ----
            ["OPEN_CONTAINER"] = Spec("fd", [], (s, _) => OpenContainer(s)),
            ["GET_API_VERSION"] = Spec("version", ["container"], GetApiVersion, ("container", n)),
            ["CHECK_EXTENSION"] = Spec("value", ["container", "extension"], CheckExtension, ("container", n),
                ("extension", ArgKind.Flags(("TYPE1", 1), ("SPAPR_TCE", 2), ("TYPE1v2", 3), ("DMA_CC_IOMMU", 4), ("EEH", 5),
                    ("TYPE1_NESTING", 6), ("SPAPR_TCE_v2", 7), ("NOIOMMU", 8), ("UNMAP_ALL", 9), ("UPDATE_VADDR", 10), ("DIRTY_PAGES", 0x10000)))),
            ["OPEN_GROUP"] = Spec("fd", ["group"], OpenGroup, ("group", n)),
            ["GROUP_GET_STATUS"] = Spec("flags", ["group"], GroupGetStatus, ("group", n)),
            ["GROUP_SET_CONTAINER"] = Spec(null, ["group", "container"], (s, st) =>
                CallResult.Of(s.Process.GroupSetContainer((int)s.Num(st, "group"), (int)s.Num(st, "container"))), ("group", n), ("container", n)),
            ["GROUP_UNSET_CONTAINER"] = Spec(null, ["group"], (s, st) => CallResult.Of(s.Process.GroupUnsetContainer((int)s.Num(st, "group"))), ("group", n)),
            ["GROUP_GET_DEVICE_FD"] = Spec("fd", ["group", "device"], GroupGetDeviceFd, ("group", n), ("device", ArgKind.Device)),
            ["SET_IOMMU"] = Spec(null, ["container", "type"], SetIommu, ("container", n), ("type", ArgKind.Flags(("TYPE1", 1), ("TYPE1v2", 3)))),
            ["IOMMU_GET_INFO"] = Spec("iova_pgsizes", ["container"], IommuGetInfo, ("container", n), ("argsz", n)),
            ["IOMMU_MAP_DMA"] = Spec(null, ["container", "vaddr", "iova", "size"], IommuMapDma, ("container", n), ("vaddr", n), ("iova", n), ("size", n),
                ("flags", ArgKind.Flags(("READ", 1), ("WRITE", 2), ("VADDR", 4))), ("argsz", n)),
            ["IOMMU_UNMAP_DMA"] = Spec("size", ["container"], IommuUnmapDma, ("container", n), ("iova", n), ("size", n),
                ("flags", ArgKind.Flags(("GET_DIRTY_BITMAP", 1), ("ALL", 2), ("VADDR", 4))), ("argsz", n)),
        };
    }

    // ---- process / guest ------------------------------------------------------------------

    private static CallResult Mmap(ScriptSession s, Statement st)
    {
        ulong len = s.Num(st, "length");
        if (len == 0) return CallResult.Of(Errno.EINVAL);
        ulong prot = s.Flags(st, "prot", 3);
        ulong va;
        if (st.Has("fd"))
        {
            // MAP_SHARED of a memfd: the file's pages at a new VA.
            ulong fd = s.Num(st, "fd");
            if (fd > int.MaxValue || s.Process.File((int)fd) is not { } f) return CallResult.Of(Errno.EBADF);
            if (f is not Memfd memfd) return CallResult.Of(Errno.ENODEV);
            Errno rc = s.Process.Mm.MmapFile(memfd, s.Num(st, "offset"), len, writable: (prot & 2) != 0, out va);
            return rc != Errno.OK ? CallResult.Of(rc) : new CallResult { Main = va }.Hex("va", va);
        }
        if (st.Has("offset")) return CallResult.Of(Errno.EINVAL); // an offset needs a file
        Errno mrc = s.Process.Mm.TryMmap(len, writable: (prot & 2) != 0, UserAddressSpace.HugePageSize, out va);
        return mrc != Errno.OK ? CallResult.Of(mrc) : new CallResult { Main = va }.Hex("va", va);
    }

    /// <summary>memfd_create + ftruncate(size): binds the new fd.</summary>
    private static CallResult MemfdCreate(ScriptSession s, Statement st)
    {
        Errno rc = s.Process.TryCreateMemfd(s.Num(st, "size"), out int fd, out _);
        return rc != Errno.OK ? CallResult.Of(rc) : new CallResult { Main = (ulong)fd }.Dec("fd", (ulong)fd);
    }

    private static CallResult VmCreate(ScriptSession s, Statement st)
    {
        ulong mem = s.Num(st, "memory");
        if (mem == 0 || (mem & 0xFFF) != 0) return CallResult.Of(Errno.EINVAL);
        VirtualMachine vm;
        try
        {
            vm = s.Process.CreateVm(mem);
        }
        catch (OutOfMemoryException)
        {
            return CallResult.Of(Errno.ENOMEM);
        }
        s.Vms[vm.RamUserVa] = vm;
        return new CallResult { Main = vm.RamUserVa }.Hex("va", vm.RamUserVa).Hex("memory", mem);
    }

    private static VirtualMachine? Vm(ScriptSession s, Statement st) => s.Vms.GetValueOrDefault(s.Num(st, "vm"));

    private static CallResult GuestPgtableAlloc(ScriptSession s, Statement st)
    {
        if (Vm(s, st) is not { } vm) return CallResult.Of(Errno.ENOENT);
        ulong levels = s.Num(st, "levels", 4);
        if (levels is not (4 or 5)) return CallResult.Of(Errno.EINVAL);
        ulong root;
        try
        {
            root = vm.AllocPageTable((int)levels);
        }
        catch (GuestRamExhaustedException)
        {
            return CallResult.Of(Errno.ENOMEM);
        }
        return new CallResult { Main = root }.Hex("pgtbl_addr", root);
    }

    private static CallResult GuestMap(ScriptSession s, Statement st)
    {
        if (Vm(s, st) is not { } vm || vm.PageTable(s.Num(st, "pgtable")) is not { } pt) return CallResult.Of(Errno.ENOENT);
        ulong iova = s.Num(st, "iova"), gpa = s.Num(st, "gpa"), len = s.Num(st, "length");
        ulong flags = s.Flags(st, "flags", 6);
        var access = ((flags & 4) != 0 ? Access.Read : Access.None) | ((flags & 2) != 0 ? Access.Write : Access.None);
        PageSize max = PageSize.Size1G;
        if (st.Has("pagesize")) PageSizes.TryParse(s.Raw(st, "pagesize"), out max);
        if (access == Access.None || len == 0 || ((iova | gpa | len) & 0xFFF) != 0 || gpa > vm.MemoryBytes || len > vm.MemoryBytes - gpa)
            return CallResult.Of(Errno.EINVAL);
        try
        {
            pt.Map(iova, gpa, len, access, max);
        }
        catch (GuestRamExhaustedException)
        {
            return CallResult.Of(Errno.ENOMEM); // the guest's tables filled its RAM
        }
        catch (InvalidOperationException)
        {
            return CallResult.Of(Errno.EEXIST);
        }
        catch (ArgumentException)
        {
            return CallResult.Of(Errno.EINVAL);
        }
        return new CallResult();
    }

    private static CallResult GuestUnmap(ScriptSession s, Statement st)
    {
        if (Vm(s, st) is not { } vm || vm.PageTable(s.Num(st, "pgtable")) is not { } pt) return CallResult.Of(Errno.ENOENT);
        ulong iova = s.Num(st, "iova"), len = s.Num(st, "length");
        try
        {
            ulong removed = pt.Unmap(iova, len);
            return new CallResult().Hex("length", removed);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            return CallResult.Of(Errno.EINVAL);
        }
    }

    private static CallResult Dma(ScriptSession s, Statement st)
    {
        if (s.Device(st) is not { } dev) return CallResult.Of(Errno.ENODEV);
        uint? pasid = st.Has("pasid") ? s.U32(st, "pasid") : null;
        var op = st.Has("op") && s.Raw(st, "op") == "W" ? Access.Write : Access.Read;
        int bytes = (int)Math.Clamp(s.Num(st, "bytes", 64), 1, 4096);
        long toUser = s.Kernel.PageRequestsToUser;
        DmaOutcome r;
        try
        {
            r = s.Kernel.Port.ExecuteDma(dev.Rid, pasid, s.Num(st, "iova"), bytes, op);
        }
        catch (InvalidOperationException) when (s.Kernel.PageRequestsToUser > toUser)
        {
            // The device waits for the page response a user fault queue now holds: the DMA
            // finishes (or fails) in the background after FAULT_RESPOND.
            return new CallResult { Word = "FAULT" }.Text("reason", "pageRequestQueued");
        }
        if (r.Faulted) return new CallResult { Word = "FAULT" }.Text("reason", r.Reason.Key());
        return new CallResult()
            .Hex("pa", r.PhysicalAddress)
            .Dec("latency_ns", (ulong)Math.Max(0, r.LatencyPs / 1000))
            .Dec("walk_reads", (ulong)r.WalkReads);
    }

    private static CallResult Advance(ScriptSession s, Statement st)
    {
        ulong ns = s.Num(st, "ns");
        if (ns > long.MaxValue / 1000) return CallResult.Of(Errno.EINVAL);
        s.Kernel.Port.Advance((long)ns * 1000);
        s.Kernel.HandlePageRequests();
        return new CallResult();
    }

    /// <summary>setrlimit(RLIMIT_MEMLOCK) and CAP_IPC_LOCK for the script's process, then its accounting: the limit,
    /// and in 4 KiB pages mm->locked_vm (VmLck), mm->pinned_vm (VmPin) and user->locked_vm.</summary>
    private static CallResult Process(ScriptSession s, Statement st)
    {
        var account = s.Process.Mm.Memlock;
        if (st.Has("cap_ipc_lock"))
        {
            ulong cap = s.Num(st, "cap_ipc_lock");
            if (cap > 1) return CallResult.Of(Errno.EINVAL);
            account.CapIpcLock = cap == 1;
        }
        if (st.Has("memlock"))
        {
            ulong bytes = s.Flags(st, "memlock");
            account.LimitPages = bytes == ulong.MaxValue ? MemlockAccount.Unlimited : bytes / UserAddressSpace.PageSize;
        }
        var r = new CallResult();
        if (account.LimitPages == MemlockAccount.Unlimited) r.Text("memlock", "unlimited");
        else r.Hex("memlock", account.LimitPages * UserAddressSpace.PageSize);
        return r.Dec("cap_ipc_lock", account.CapIpcLock ? 1UL : 0UL)
            .Dec("locked_vm", account.MmLockedPages)
            .Dec("pinned_vm", account.PinnedPages)
            .Dec("user_locked_vm", account.UserLockedPages);
    }

    // ---- iommufd ----------------------------------------------------------------------------

    private static CallResult IoasAlloc(ScriptSession s, Statement st)
    {
        var c = new IommuIoasAlloc { flags = s.U32(st, "flags") };
        var r = CallResult.Of(s.Ctx.IoasAlloc(c));
        if (r.Ok) r.Dec("out_ioas_id", c.out_ioas_id).Main = c.out_ioas_id;
        return r;
    }

    private static CallResult IoasMap(ScriptSession s, Statement st)
    {
        var c = new IommuIoasMap
        {
            ioas_id = s.U32(st, "ioas_id"), user_va = s.Num(st, "user_va"), length = s.Num(st, "length"),
            iova = s.Num(st, "iova"), flags = (uint)s.Flags(st, "flags"),
        };
        var r = CallResult.Of(s.Ctx.IoasMap(c));
        if (r.Ok) r.Hex("iova", c.iova).Main = c.iova;
        return r;
    }

    private static CallResult IoasMapFile(ScriptSession s, Statement st)
    {
        ulong fd = s.Num(st, "fd");
        var c = new IommuIoasMapFile
        {
            ioas_id = s.U32(st, "ioas_id"), fd = (int)fd, start = s.Num(st, "start"), length = s.Num(st, "length"),
            iova = s.Num(st, "iova"), flags = (uint)s.Flags(st, "flags"),
        };
        var r = CallResult.Of(s.Ctx.IoasMapFile(c, fd <= int.MaxValue ? s.Process.File((int)fd) : null));
        if (r.Ok) r.Hex("iova", c.iova).Main = c.iova;
        return r;
    }

    private static CallResult IoasCopy(ScriptSession s, Statement st)
    {
        var c = new IommuIoasCopy
        {
            dst_ioas_id = s.U32(st, "dst_ioas_id"), src_ioas_id = s.U32(st, "src_ioas_id"), length = s.Num(st, "length"),
            dst_iova = s.Num(st, "dst_iova"), src_iova = s.Num(st, "src_iova"), flags = (uint)s.Flags(st, "flags"),
        };
        var r = CallResult.Of(s.Ctx.IoasCopy(c));
        if (r.Ok) r.Hex("dst_iova", c.dst_iova).Main = c.dst_iova;
        return r;
    }

    private static CallResult IoasUnmap(ScriptSession s, Statement st)
    {
        var c = new IommuIoasUnmap { ioas_id = s.U32(st, "ioas_id"), iova = s.Num(st, "iova"), length = s.Num(st, "length") };
        var r = CallResult.Of(s.Ctx.IoasUnmap(c));
        if (r.Ok) r.Hex("length", c.length).Main = c.length;
        return r;
    }

    private static CallResult IoasIovaRanges(ScriptSession s, Statement st)
    {
        var c = new IommuIoasIovaRanges { ioas_id = s.U32(st, "ioas_id"), num_iovas = s.U32(st, "num_iovas", 16) };
        uint capacity = c.num_iovas;
        var rc = s.Ctx.IoasIovaRanges(c);
        var r = CallResult.Of(rc);
        if (rc is Errno.OK or Errno.EMSGSIZE)
        {
            r.Dec("num_iovas", c.num_iovas);
            r.Main = c.num_iovas;
            if (rc == Errno.OK)
            {
                r.Hex("out_iova_alignment", c.out_iova_alignment);
                var shown = c.allowed_iovas.Take((int)Math.Min(Math.Min(capacity, c.num_iovas), (uint)c.allowed_iovas.Length)).Select(x => $"0x{x.start:x}-0x{x.last:x}");
                r.Text("ranges", string.Join(",", shown));
            }
        }
        return r;
    }

    private static CallResult IoasAllowIovas(ScriptSession s, Statement st)
    {
        ArgKinds.TryRanges(s.Raw(st, "ranges"), out var ranges);
        var c = new IommuIoasAllowIovas
        {
            ioas_id = s.U32(st, "ioas_id"),
            num_iovas = (uint)ranges.Count,
            allowed_iovas = ranges.Select(x => new IommuIovaRange { start = x.Start, last = x.Last }).ToArray(),
        };
        return CallResult.Of(s.Ctx.IoasAllowIovas(c));
    }

    private static CallResult Option(ScriptSession s, Statement st)
    {
        var c = new IommuOption
        {
            option_id = (uint)s.Flags(st, "option_id"), op = (ushort)s.Flags(st, "op"),
            object_id = s.U32(st, "object_id"), val64 = s.Num(st, "val64"),
        };
        var r = CallResult.Of(s.Ctx.Option(c));
        if (r.Ok) r.Dec("val64", c.val64).Main = c.val64;
        return r;
    }

    private static CallResult VfioIoas(ScriptSession s, Statement st)
    {
        var c = new IommuVfioIoas { ioas_id = s.U32(st, "ioas_id"), op = (ushort)s.Flags(st, "op") };
        var r = CallResult.Of(s.Ctx.VfioIoas(c));
        if (r.Ok) r.Dec("ioas_id", c.ioas_id).Main = c.ioas_id;
        return r;
    }

    private static CallResult HwptAlloc(ScriptSession s, Statement st)
    {
        var c = new IommuHwptAlloc
        {
            flags = (uint)s.Flags(st, "flags"), dev_id = s.U32(st, "dev_id"), pt_id = s.U32(st, "pt_id"),
            data_type = (uint)s.Flags(st, "data_type"), fault_id = s.U32(st, "fault_id"),
        };
        if (st.Has("pgtbl_addr") || st.Has("addr_width") || st.Has("vtd_flags"))
            c.data = new IommuHwptVtdS1 { pgtbl_addr = s.Num(st, "pgtbl_addr"), addr_width = s.U32(st, "addr_width", 48), flags = s.Flags(st, "vtd_flags") };
        var r = CallResult.Of(s.Ctx.HwptAlloc(c));
        if (r.Ok) r.Dec("out_hwpt_id", c.out_hwpt_id).Main = c.out_hwpt_id;
        return r;
    }

    private static CallResult HwptInvalidate(ScriptSession s, Statement st)
    {
        ArgKinds.TryEntries(st.Has("entries") ? s.Raw(st, "entries") : "", out var entries);
        var c = new IommuHwptInvalidate
        {
            hwpt_id = s.U32(st, "hwpt_id"),
            data_type = (uint)s.Flags(st, "data_type"),
            entry_len = s.U32(st, "entry_len", IommufdContext.VtdS1InvalidateEntryLen),
            entry_num = st.Has("entry_num") ? s.U32(st, "entry_num") : (uint)entries.Count,
            data = entries.Count == 0 ? null : entries.Select(e => new IommuHwptVtdS1Invalidate { addr = e.Addr, npages = e.Npages, flags = e.Flags }).ToArray(),
        };
        var r = CallResult.Of(s.Ctx.HwptInvalidate(c));
        r.Dec("entry_num", c.entry_num).Main = c.entry_num;
        return r;
    }

    private static CallResult HwptSetDirtyTracking(ScriptSession s, Statement st)
        => CallResult.Of(s.Ctx.HwptSetDirtyTracking(new IommuHwptSetDirtyTracking { hwpt_id = s.U32(st, "hwpt_id"), flags = (uint)s.Flags(st, "flags") }));

    private static CallResult HwptGetDirtyBitmap(ScriptSession s, Statement st)
    {
        var c = new IommuHwptGetDirtyBitmap
        {
            hwpt_id = s.U32(st, "hwpt_id"), iova = s.Num(st, "iova"), length = s.Num(st, "length"),
            page_size = s.Num(st, "page_size"), flags = (uint)s.Flags(st, "flags"),
        };
        var r = CallResult.Of(s.Ctx.HwptGetDirtyBitmap(c));
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
        r.Main = dirty;
        return r;
    }

    private static CallResult GetHwInfo(ScriptSession s, Statement st)
    {
        uint len = s.U32(st, "data_len", IommufdContext.HwInfoVtdLen);
        // The caller's buffer (data_uptr) is data_len bytes of its memory; the model keeps at most its first 64 KiB
        // (a data_len near 2^32 then costs nothing: what lies beyond is only zero-filled by the kernel).
        var c = new IommuHwInfo
        {
            dev_id = s.U32(st, "dev_id"), flags = (uint)s.Flags(st, "flags"), data_len = len, data = new byte[Math.Min(len, 1u << 16)],
            out_data_type = (uint)s.Flags(st, "in_data_type"),
        };
        var r = CallResult.Of(s.Ctx.GetHwInfo(c));
        if (r.Ok)
        {
            r.Dec("data_len", c.data_len).Dec("out_data_type", c.out_data_type).Hex("out_capabilities", c.out_capabilities)
             .Dec("out_max_pasid_log2", c.out_max_pasid_log2).Main = c.out_capabilities;
        }
        return r;
    }

    private static CallResult FaultQueueAlloc(ScriptSession s, Statement st)
    {
        var c = new IommuFaultAlloc { flags = s.U32(st, "flags") };
        var r = CallResult.Of(s.Ctx.FaultQueueAlloc(c));
        if (r.Ok) r.Dec("out_fault_id", c.out_fault_id).Dec("out_fault_fd", c.out_fault_fd).Main = c.out_fault_id;
        return r;
    }

    private static CallResult FaultRead(ScriptSession s, Statement st)
    {
        var rc = s.Ctx.FaultRead(s.U32(st, "fault_id"), (int)Math.Min(s.Num(st, "count", 64), int.MaxValue), out var faults);
        var r = CallResult.Of(rc);
        if (!r.Ok) return r;
        r.Dec("count", (ulong)faults.Count);
        if (faults.Count > 0)
        {
            var f = faults[0];
            r.Dec("cookie", f.cookie).Dec("dev_id", f.dev_id).Dec("pasid", f.pasid).Hex("addr", f.addr).Dec("perm", f.perm).Main = f.cookie;
        }
        return r;
    }

    private static CallResult FaultRespond(ScriptSession s, Statement st)
        => CallResult.Of(s.Ctx.FaultRespond(s.U32(st, "fault_id"), new IommuHwptPageResponse { cookie = s.U32(st, "cookie"), code = (uint)s.Flags(st, "code") }));

    private static CallResult ViommuAlloc(ScriptSession s, Statement st)
    {
        var c = new IommuViommuAlloc
        {
            flags = s.U32(st, "flags"), type = (uint)s.Flags(st, "type", (ulong)IommuViommuType.INTEL_VTD),
            dev_id = s.U32(st, "dev_id"), hwpt_id = s.U32(st, "hwpt_id"),
        };
        var r = CallResult.Of(s.Ctx.ViommuAlloc(c));
        if (r.Ok) r.Dec("out_viommu_id", c.out_viommu_id).Main = c.out_viommu_id;
        return r;
    }

    private static CallResult VdeviceAlloc(ScriptSession s, Statement st)
    {
        var c = new IommuVdeviceAlloc { viommu_id = s.U32(st, "viommu_id"), dev_id = s.U32(st, "dev_id"), virt_id = s.Num(st, "virt_id") };
        var r = CallResult.Of(s.Ctx.VdeviceAlloc(c));
        if (r.Ok) r.Dec("out_vdevice_id", c.out_vdevice_id).Main = c.out_vdevice_id;
        return r;
    }

    // ---- VFIO cdev ------------------------------------------------------------------------------

    private static CallResult DeviceBind(ScriptSession s, Statement st)
    {
        if (s.Device(st) is not { } dev) return CallResult.Of(Errno.ENODEV);
        if (s.Context(st, "iommufd") is not { } ictx) return CallResult.Of(Errno.EBADF);
        var rc = s.Process.OpenDeviceCdev(dev, out int fd);
        if (rc != Errno.OK) return CallResult.Of(rc);
        var c = new VfioDeviceBindIommufd { iommufd = st.Has("iommufd") ? (int)s.Num(st, "iommufd") : s.IommufdFd, flags = s.U32(st, "flags") };
        rc = s.Process.DeviceFile(fd)!.BindIommufd(ictx, c);
        if (rc != Errno.OK)
        {
            s.Process.Close(fd);
            return CallResult.Of(rc);
        }
        var r = new CallResult().Dec("out_devid", c.out_devid).Dec("fd", (ulong)fd);
        r.Main = c.out_devid;
        return r;
    }

    private static VfioDeviceFile? Cdev(ScriptSession s, Statement st)
        => s.Context(st, "iommufd") is { } ictx ? s.Process.DeviceFileByDevid(ictx, s.U32(st, "dev_id")) : null;

    private static CallResult DeviceAttach(ScriptSession s, Statement st)
    {
        if (Cdev(s, st) is not { } f) return CallResult.Of(Errno.ENOENT);
        uint flags = (uint)s.Flags(st, "flags");
        if (st.Has("pasid")) flags |= VfioConst.VFIO_DEVICE_ATTACH_PASID;
        var c = new VfioDeviceAttachIommufdPt { pt_id = s.U32(st, "pt_id"), flags = flags, pasid = s.U32(st, "pasid") };
        var r = CallResult.Of(f.AttachPt(c));
        if (r.Ok) r.Dec("pt_id", c.pt_id).Main = c.pt_id;
        return r;
    }

    private static CallResult DeviceDetach(ScriptSession s, Statement st)
    {
        if (Cdev(s, st) is not { } f) return CallResult.Of(Errno.ENOENT);
        uint flags = (uint)s.Flags(st, "flags");
        if (st.Has("pasid")) flags |= VfioConst.VFIO_DEVICE_DETACH_PASID;
        return CallResult.Of(f.DetachPt(new VfioDeviceDetachIommufdPt { flags = flags, pasid = s.U32(st, "pasid") }));
    }

    // ---- legacy VFIO ----------------------------------------------------------------------------

    private static CallResult OpenContainer(ScriptSession s)
    {
        int fd = s.Process.OpenContainer(out IommufdContext _);
        var r = new CallResult().Dec("fd", (ulong)fd);
        r.Main = (ulong)fd;
        return r;
    }

    private static IommufdContext? Container(ScriptSession s, Statement st) => s.Process.Iommufd((int)s.Num(st, "container"));

    private static CallResult GetApiVersion(ScriptSession s, Statement st)
    {
        if (Container(s, st) is null) return CallResult.Of(Errno.EBADF);
        ulong v = (ulong)IommufdContext.VfioGetApiVersion();
        var r = new CallResult().Dec("version", v);
        r.Main = v;
        return r;
    }

    private static CallResult CheckExtension(ScriptSession s, Statement st)
    {
        if (Container(s, st) is not { } c) return CallResult.Of(Errno.EBADF);
        ulong ext = s.Flags(st, "extension");
        // VFIO_IOMMU_DIRTY_PAGES is not an extension iommufd's compat layer implements at all.
        if (ext == 0x10000) return CallResult.Of(Errno.ENOTTY);
        int v = c.VfioCheckExtension((uint)ext);
        if (v < 0) return CallResult.Of((Errno)(-v));
        var r = new CallResult().Dec("value", (ulong)v);
        r.Main = (ulong)v;
        return r;
    }

    private static CallResult OpenGroup(ScriptSession s, Statement st)
    {
        var rc = s.Process.OpenGroup((int)s.Num(st, "group"), out int fd);
        var r = CallResult.Of(rc);
        if (r.Ok) r.Dec("fd", (ulong)fd).Main = (ulong)fd;
        return r;
    }

    private static CallResult GroupGetStatus(ScriptSession s, Statement st)
    {
        var status = new VfioGroupStatus();
        var r = CallResult.Of(s.Process.GroupGetStatus((int)s.Num(st, "group"), status));
        if (r.Ok) r.Dec("flags", status.flags).Main = status.flags;
        return r;
    }

    private static CallResult GroupGetDeviceFd(ScriptSession s, Statement st)
    {
        var r = CallResult.Of(s.Process.GroupGetDeviceFd((int)s.Num(st, "group"), s.Raw(st, "device"), out int fd));
        if (r.Ok) r.Dec("fd", (ulong)fd).Main = (ulong)fd;
        return r;
    }

    private static CallResult SetIommu(ScriptSession s, Statement st)
        => Container(s, st) is { } c ? CallResult.Of(c.VfioSetIommu((uint)s.Flags(st, "type"))) : CallResult.Of(Errno.EBADF);

    private static CallResult IommuGetInfo(ScriptSession s, Statement st)
    {
        if (Container(s, st) is not { } c) return CallResult.Of(Errno.EBADF);
        var info = new VfioIommuType1Info { argsz = s.U32(st, "argsz", 4096) };
        var r = CallResult.Of(c.VfioIommuGetInfo(info));
        if (!r.Ok) return r;
        r.Dec("argsz", info.argsz).Dec("flags", info.flags).Hex("iova_pgsizes", info.iova_pgsizes).Dec("cap_offset", info.cap_offset);
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

    private static CallResult IommuMapDma(ScriptSession s, Statement st)
    {
        if (Container(s, st) is not { } c) return CallResult.Of(Errno.EBADF);
        var m = new VfioIommuType1DmaMap
        {
            argsz = s.U32(st, "argsz", VfioIommuType1DmaMap.MinSize), flags = (uint)s.Flags(st, "flags", 3),
            vaddr = s.Num(st, "vaddr"), iova = s.Num(st, "iova"), size = s.Num(st, "size"),
        };
        return CallResult.Of(c.VfioMapDma(m));
    }

    private static CallResult IommuUnmapDma(ScriptSession s, Statement st)
    {
        if (Container(s, st) is not { } c) return CallResult.Of(Errno.EBADF);
        var u = new VfioIommuType1DmaUnmap
        {
            argsz = s.U32(st, "argsz", VfioIommuType1DmaUnmap.MinSize), flags = (uint)s.Flags(st, "flags"),
            iova = s.Num(st, "iova"), size = s.Num(st, "size"),
        };
        var r = CallResult.Of(c.VfioUnmapDma(u));
        if (r.Ok) r.Hex("size", u.size).Main = u.size;
        return r;
    }
}
