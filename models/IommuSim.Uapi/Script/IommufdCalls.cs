using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Script;

/// <summary>
/// The iommufd calls of the script language: each ioctl of <see cref="IommufdIoctlTable"/> by its name, through
/// <see cref="IommufdContext.Ioctl{T}(uint, ulong, bool, Func{T}, out T)"/> (size checks, then the handler), plus the
/// fault queue's read/write, the selftest's in-kernel access and a raw ioctl by number.
/// </summary>
internal static partial class IommufdCalls
{
    /// <summary>
    /// An iommufd ioctl: keys fill struct <typeparamref name="T"/> (<paramref name="copyFromUser"/>); the optional
    /// <c>size</c> (the struct's u32 size field, default today's size) and <c>trailing</c> (how many non-zero bytes
    /// follow the kernel's struct) keys drive the dispatch checks; <paramref name="copyToUser"/> prints the out fields.
    /// </summary>
    private static (string, CallSpec) Ioctl<T>(string name, string? binds, string[] required,
        Func<ScriptSession, Statement, T> copyFromUser, Func<ScriptSession, Statement, T, Errno, CallResult> copyToUser,
        params (string Key, ArgKind Kind)[] keys) where T : class
    {
        var op = IommufdIoctlTable.ByName(name) ?? throw new ArgumentException($"no iommufd ioctl {name}", nameof(name));
        (string, ArgKind)[] all = [.. keys, ("size", new NumberKind(32)), ("trailing", ArgKind.Number)];
        return (name, ScriptCalls.Spec(binds, required, (s, st) =>
        {
            Errno rc = s.Ctx.Ioctl(op.Nr, s.Num(st, "size", op.Size), s.Num(st, "trailing") != 0, () => copyFromUser(s, st), out T? cmd);
            return cmd is null ? CallResult.Of(rc) : copyToUser(s, st, cmd, rc);
        }, all));
    }

    /// <summary>Prints one out field (and binds it) when the ioctl succeeded.</summary>
    private static CallResult OnOk(Errno rc, Func<CallResult, CallResult> fields) => rc == Errno.OK ? fields(CallResult.Of(rc)) : CallResult.Of(rc);

    private static CallResult Bound(this CallResult r, ulong main)
    {
        r.Main = main;
        return r;
    }

    public static IEnumerable<(string, CallSpec)> Calls()
    {
        var n = ArgKind.Number;
        var mapFlags = ArgKind.FlagsOf(typeof(IommuIoasMapFlags));
        yield return Ioctl("IOAS_ALLOC", "out_ioas_id", [], (s, st) => new IommuIoasAlloc { flags = s.U32(st, "flags") },
            (_, _, c, rc) => OnOk(rc, r => r.Dec("out_ioas_id", c.out_ioas_id).Bound(c.out_ioas_id)), ("flags", n));
        yield return Ioctl("IOAS_MAP", "iova", ["ioas_id", "user_va", "length"], (s, st) => new IommuIoasMap
        {
            ioas_id = s.U32(st, "ioas_id"), user_va = s.Num(st, "user_va"), length = s.Num(st, "length"),
            iova = s.Num(st, "iova"), flags = (uint)s.Flags(st, "flags"),
        }, (_, _, c, rc) => OnOk(rc, r => r.Hex("iova", c.iova).Bound(c.iova)),
            ("ioas_id", n), ("user_va", n), ("length", n), ("iova", n), ("flags", mapFlags));
        yield return Ioctl("IOAS_MAP_FILE", "iova", ["ioas_id", "fd", "length"], (s, st) => new IommuIoasMapFile
        {
            ioas_id = s.U32(st, "ioas_id"), fd = (int)s.Num(st, "fd"), start = s.Num(st, "start"), length = s.Num(st, "length"),
            iova = s.Num(st, "iova"), flags = (uint)s.Flags(st, "flags"),
        }, (_, _, c, rc) => OnOk(rc, r => r.Hex("iova", c.iova).Bound(c.iova)),
            ("ioas_id", n), ("fd", n), ("start", n), ("length", n), ("iova", n), ("flags", mapFlags));
        yield return Ioctl("IOAS_COPY", "dst_iova", ["dst_ioas_id", "src_ioas_id", "length", "src_iova"], (s, st) => new IommuIoasCopy
        {
            dst_ioas_id = s.U32(st, "dst_ioas_id"), src_ioas_id = s.U32(st, "src_ioas_id"), length = s.Num(st, "length"),
            dst_iova = s.Num(st, "dst_iova"), src_iova = s.Num(st, "src_iova"), flags = (uint)s.Flags(st, "flags"),
        }, (_, _, c, rc) => OnOk(rc, r => r.Hex("dst_iova", c.dst_iova).Bound(c.dst_iova)),
            ("dst_ioas_id", n), ("src_ioas_id", n), ("length", n), ("dst_iova", n), ("src_iova", n), ("flags", mapFlags));
        yield return Ioctl("IOAS_UNMAP", "length", ["ioas_id", "iova", "length"],
            (s, st) => new IommuIoasUnmap { ioas_id = s.U32(st, "ioas_id"), iova = s.Num(st, "iova"), length = s.Num(st, "length") },
            (_, _, c, rc) => OnOk(rc, r => r.Hex("length", c.length).Bound(c.length)), ("ioas_id", n), ("iova", n), ("length", n));
        yield return Ioctl("IOAS_IOVA_RANGES", "num_iovas", ["ioas_id"],
            (s, st) => new IommuIoasIovaRanges { ioas_id = s.U32(st, "ioas_id"), num_iovas = s.U32(st, "num_iovas", 16) },
            IoasIovaRangesOut, ("ioas_id", n), ("num_iovas", n));
        yield return Ioctl("IOAS_ALLOW_IOVAS", null, ["ioas_id", "ranges"], IoasAllowIovasIn, (_, _, _, rc) => CallResult.Of(rc),
            ("ioas_id", n), ("ranges", ArgKind.Ranges));
        yield return Ioctl("OPTION", "val64", ["option_id", "op"], (s, st) => new IommuOption
        {
            option_id = (uint)s.Flags(st, "option_id"), op = (ushort)s.Flags(st, "op"),
            object_id = s.U32(st, "object_id"), val64 = s.Num(st, "val64"),
        }, (_, _, c, rc) => OnOk(rc, r => r.Dec("val64", c.val64).Bound(c.val64)),
            ("option_id", ArgKind.FlagsOf(typeof(IommuOptionId))), ("op", ArgKind.FlagsOf(typeof(IommuOptionOp))), ("object_id", n), ("val64", n));
        yield return Ioctl("DESTROY", null, ["id"], (s, st) => new IommuDestroy { id = s.U32(st, "id") }, (_, _, _, rc) => CallResult.Of(rc), ("id", n));
        yield return Ioctl("VFIO_IOAS", "ioas_id", ["op"], (s, st) => new IommuVfioIoas { ioas_id = s.U32(st, "ioas_id"), op = (ushort)s.Flags(st, "op") },
            (_, _, c, rc) => OnOk(rc, r => r.Dec("ioas_id", c.ioas_id).Bound(c.ioas_id)), ("ioas_id", n), ("op", ArgKind.FlagsOf(typeof(IommuVfioIoasOp))));
        foreach (var call in HwptCalls()) yield return call;

        // ---- the fault queue's fd: read(2) and write(2) of iommu_hwpt_pgfault / iommu_hwpt_page_response ----
        yield return ("FAULT_READ", ScriptCalls.Spec("cookie", ["fault_id"], FaultRead, ("fault_id", n), ("count", n)));
        yield return ("FAULT_RESPOND", ScriptCalls.Spec(null, ["fault_id", "cookie"], (s, st) => CallResult.Of(s.Ctx.FaultRespond(s.U32(st, "fault_id"),
                new IommuHwptPageResponse { cookie = s.U32(st, "cookie"), code = (uint)s.Flags(st, "code") })),
            ("fault_id", n), ("cookie", n), ("code", ArgKind.FlagsOf(typeof(IommuHwptPageResponse), "CODE_"))));

        // ---- in-kernel access (the selftest's mock access): pinned pages lock their areas ----
        yield return ("ACCESS_CREATE", ScriptCalls.Spec("access_id", ["ioas_id"], (s, st) =>
        {
            var rc = s.Ctx.AccessCreate(s.U32(st, "ioas_id"), out uint id);
            return OnOk(rc, r => r.Dec("access_id", id).Bound(id));
        }, ("ioas_id", n)));
        yield return ("ACCESS_PIN", ScriptCalls.Spec(null, ["access_id", "iova", "length"], (s, st) =>
            CallResult.Of(s.Ctx.Get(s.U32(st, "access_id"), out IommufdAccess a) is var rc && rc != Errno.OK ? rc : a.Pin(s.Num(st, "iova"), s.Num(st, "length"))),
            ("access_id", n), ("iova", n), ("length", n)));
        yield return ("ACCESS_UNPIN", ScriptCalls.Spec(null, ["access_id", "iova", "length"], (s, st) =>
            CallResult.Of(s.Ctx.Get(s.U32(st, "access_id"), out IommufdAccess a) is var rc && rc != Errno.OK ? rc : a.Unpin(s.Num(st, "iova"), s.Num(st, "length"))),
            ("access_id", n), ("iova", n), ("length", n)));

        // A raw ioctl by number with no struct behind it (size 0): ENOTTY off the table, EINVAL (below min_size) on it.
        yield return ("IOCTL", ScriptCalls.Spec(null, ["nr"], (s, st) => CallResult.Of(IommufdIoctlTable.Check((uint)s.Num(st, "nr"), 0, false)),
            ("nr", n), ("size", n)));
    }

    private static CallResult IoasIovaRangesOut(ScriptSession s, Statement st, IommuIoasIovaRanges c, Errno rc)
    {
        uint capacity = s.U32(st, "num_iovas", 16);
        var r = CallResult.Of(rc);
        if (rc is Errno.OK or Errno.EMSGSIZE)
        {
            r.Dec("num_iovas", c.num_iovas).Bound(c.num_iovas);
            if (rc == Errno.OK)
            {
                r.Hex("out_iova_alignment", c.out_iova_alignment);
                var shown = c.allowed_iovas.Take((int)Math.Min(Math.Min(capacity, c.num_iovas), (uint)c.allowed_iovas.Length)).Select(x => $"0x{x.start:x}-0x{x.last:x}");
                r.Text("ranges", string.Join(",", shown));
            }
        }
        return r;
    }

    private static IommuIoasAllowIovas IoasAllowIovasIn(ScriptSession s, Statement st)
    {
        ArgKinds.TryRanges(s.Raw(st, "ranges"), out var ranges);
        return new IommuIoasAllowIovas
        {
            ioas_id = s.U32(st, "ioas_id"),
            num_iovas = (uint)ranges.Count,
            allowed_iovas = ranges.Select(x => new IommuIovaRange { start = x.Start, last = x.Last }).ToArray(),
        };
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
            r.Dec("cookie", f.cookie).Dec("dev_id", f.dev_id).Dec("pasid", f.pasid).Hex("addr", f.addr).Dec("perm", f.perm).Bound(f.cookie);
        }
        return r;
    }
}
