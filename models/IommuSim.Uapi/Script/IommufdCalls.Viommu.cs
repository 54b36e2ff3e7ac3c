using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Script;

/// <summary>SMMUv3 commands written by name: OPCODE[/key=value…] items joined by ','; or RAW/WORD0/WORD1.</summary>
internal sealed record SmmuCmdsKind : ArgKind
{
    public static readonly SmmuCmdsKind Instance = new();
}

/// <summary>The vIOMMU ioctls (VIOMMU_ALLOC, VDEVICE_ALLOC, VEVENTQ_ALLOC, HW_QUEUE_ALLOC), the vEVENTQ's read()
/// and the guest's writes to a Tegra241 VCMDQ it owns.</summary>
internal static partial class IommufdCalls
{
    private static IEnumerable<(string, CallSpec)> ViommuCalls()
    {
        var n = ArgKind.Number;
        yield return Ioctl("VIOMMU_ALLOC", "out_viommu_id", ["dev_id", "hwpt_id", "type"], ViommuAllocIn,
            (_, _, c, rc) => OnOk(rc, r =>
            {
                r.Dec("out_viommu_id", c.out_viommu_id);
                if (c.data is { } d) r.Hex("out_vintf_mmap_offset", d.out_vintf_mmap_offset).Hex("out_vintf_mmap_length", d.out_vintf_mmap_length);
                return r.Bound(c.out_viommu_id);
            }),
            ("flags", n), ("type", ArgKind.FlagsOf(typeof(IommuViommuType))), ("dev_id", n), ("hwpt_id", n), ("data_len", n));
        yield return Ioctl("VDEVICE_ALLOC", "out_vdevice_id", ["viommu_id", "dev_id", "virt_id"],
            (s, st) => new IommuVdeviceAlloc { viommu_id = s.U32(st, "viommu_id"), dev_id = s.U32(st, "dev_id"), virt_id = s.Num(st, "virt_id") },
            (_, _, c, rc) => OnOk(rc, r => r.Dec("out_vdevice_id", c.out_vdevice_id).Bound(c.out_vdevice_id)), ("viommu_id", n), ("dev_id", n), ("virt_id", n));
        yield return Ioctl("IOAS_CHANGE_PROCESS", null, [], (s, st) => new IommuIoasChangeProcess { __reserved = s.U32(st, "__reserved") },
            (_, _, _, rc) => CallResult.Of(rc), ("__reserved", n));
        yield return Ioctl("VEVENTQ_ALLOC", "out_veventq_id", ["viommu_id", "type", "veventq_depth"], (s, st) => new IommuVeventqAlloc
        {
            flags = s.U32(st, "flags"), viommu_id = s.U32(st, "viommu_id"), type = (uint)s.Flags(st, "type"),
            veventq_depth = s.U32(st, "veventq_depth"), __reserved = s.U32(st, "__reserved"),
        }, (_, _, c, rc) => OnOk(rc, r => r.Dec("out_veventq_id", c.out_veventq_id).Dec("out_veventq_fd", c.out_veventq_fd).Bound(c.out_veventq_id)),
            ("flags", n), ("viommu_id", n), ("type", ArgKind.FlagsOf(typeof(IommuVeventqType))), ("veventq_depth", n), ("__reserved", n));
        yield return Ioctl("HW_QUEUE_ALLOC", "out_hw_queue_id", ["viommu_id", "type", "nesting_parent_iova", "length"], (s, st) => new IommuHwQueueAlloc
        {
            flags = s.U32(st, "flags"), viommu_id = s.U32(st, "viommu_id"), type = (uint)s.Flags(st, "type"), index = s.U32(st, "index"),
            nesting_parent_iova = s.Num(st, "nesting_parent_iova"), length = s.Num(st, "length"),
        }, (_, _, c, rc) => OnOk(rc, r => r.Dec("out_hw_queue_id", c.out_hw_queue_id).Bound(c.out_hw_queue_id)),
            ("flags", n), ("viommu_id", n), ("type", ArgKind.FlagsOf(typeof(IommuHwQueueType))), ("index", n), ("nesting_parent_iova", n), ("length", n));

        // read(2) on a vEVENTQ fd: count bytes (default: room for 16 SMMUv3 vEVENTs).
        yield return ("VEVENTQ_READ", ScriptCalls.Spec("bytes", ["veventq_id"], VeventqRead, ("veventq_id", n), ("count", n)));
        // The guest writes commands into its VCMDQ and PROD to the VINTF page0: the hardware takes them, no VMM.
        // The guest's SMMUv3 structures in its RAM: a CD table + VMSAv8-64 stage-1 table; binds the STE word 0.
        yield return ("GUEST_SMMU_CD_ALLOC", ScriptCalls.Spec("ste0", ["vm"], GuestSmmuCdAlloc, ("vm", n), ("asid", n)));
        yield return ("GUEST_SMMU_MAP", ScriptCalls.Spec(null, ["ste0", "iova", "gpa", "length"], GuestSmmuMap,
            ("ste0", n), ("iova", n), ("gpa", n), ("length", n), ("flags", ArgKind.FlagsOf(typeof(IommuIoasMapFlags)))));
        yield return ("GUEST_SMMU_UNMAP", ScriptCalls.Spec(null, ["ste0", "iova", "length"], GuestSmmuUnmap, ("ste0", n), ("iova", n), ("length", n)));
        yield return ("VCMDQ_SUBMIT", ScriptCalls.Spec("consumed", ["hw_queue_id", "cmds"], VcmdqSubmit, ("hw_queue_id", n), ("cmds", SmmuCmdsKind.Instance)));
    }

    private static IommuViommuAlloc ViommuAllocIn(ScriptSession s, Statement st)
    {
        var c = new IommuViommuAlloc
        {
            flags = s.U32(st, "flags"), type = (uint)s.Flags(st, "type"), dev_id = s.U32(st, "dev_id"), hwpt_id = s.U32(st, "hwpt_id"),
        };
        // TEGRA241_CMDQV takes struct iommu_viommu_tegra241_cmdqv (its out fields come back); data_len=0 passes none.
        c.data_len = s.U32(st, "data_len", c.type == (uint)IommuViommuType.TEGRA241_CMDQV ? IommuViommuTegra241Cmdqv.Size : 0);
        if (c.data_len != 0) c.data = new IommuViommuTegra241Cmdqv();
        return c;
    }

    private static CallResult VeventqRead(ScriptSession s, Statement st)
    {
        var events = new List<Vevent>();
        var rc = s.Ctx.VeventqRead(s.U32(st, "veventq_id"), s.Num(st, "count", 16 * (IommufdVeventHeader.Size + 32)), events, out ulong done);
        var r = CallResult.Of(rc);
        if (!r.Ok) return r;
        r.Dec("bytes", done).Dec("events", (ulong)events.Count);
        if (events.Count > 0)
        {
            r.Text("sequence", string.Join(",", events.Select(e => e.Header.sequence)));
            if (events.Any(e => (e.Header.flags & IommuVeventqFlag.LOST_EVENTS) != 0))
                r.Text("lost_events", string.Join(",", events.Where(e => (e.Header.flags & IommuVeventqFlag.LOST_EVENTS) != 0).Select(e => e.Header.sequence)));
            var first = events.Find(e => e.Data.Length >= 32);
            if (first.Data is { Length: >= 32 } d)
            {
                var evt = SmmuEvent.Decode([BitConverter.ToUInt64(d, 0), BitConverter.ToUInt64(d, 8), BitConverter.ToUInt64(d, 16), BitConverter.ToUInt64(d, 24)]);
                r.Text("type", evt.Type.ToString()).Hex("sid", evt.Sid).Hex("input_addr", evt.InputAddress);
            }
        }
        return r.Bound(done);
    }

    private static CallResult VcmdqSubmit(ScriptSession s, Statement st)
    {
        Errno rc = s.Ctx.Get(s.U32(st, "hw_queue_id"), out HwQueue q);
        if (rc != Errno.OK) return CallResult.Of(rc);
        if (q.DriverData is not Tegra241Vcmdq vcmdq) return CallResult.Of(Errno.EINVAL);
        SmmuCmds.TryParse(s.Raw(st, "cmds"), out var cmds);
        long start = s.Kernel.Port.NowPs;
        rc = vcmdq.Submit(cmds.ToArray(), out int consumed);
        return CallResult.Of(rc).Dec("consumed", (ulong)consumed).Dec("sim_ns", (ulong)Math.Max(0, s.Kernel.Port.NowPs - start) / 1000).Bound((ulong)consumed);
    }

    private static CallResult GuestSmmuCdAlloc(ScriptSession s, Statement st)
    {
        if (s.Vms.GetValueOrDefault(s.Num(st, "vm")) is not { } vm) return CallResult.Of(Errno.ENOENT);
        ulong asid = s.Num(st, "asid", 1);
        if (asid > ushort.MaxValue) return CallResult.Of(Errno.EINVAL);
        ArmVsmmuGuest g;
        try
        {
            g = new ArmVsmmuGuest(vm, (ushort)asid);
        }
        catch (Vm.GuestRamExhaustedException)
        {
            return CallResult.Of(Errno.ENOMEM);
        }
        s.SmmuGuests[g.Ste0] = g;
        return new CallResult { Main = g.Ste0 }.Hex("ste0", g.Ste0).Hex("s1_context_ptr", g.CdTable.Base).Hex("ttb0", g.Stage1.Root);
    }

    private static CallResult GuestSmmuMap(ScriptSession s, Statement st)
    {
        if (s.SmmuGuests.GetValueOrDefault(s.Num(st, "ste0")) is not { } g) return CallResult.Of(Errno.ENOENT);
        ulong iova = s.Num(st, "iova"), gpa = s.Num(st, "gpa"), len = s.Num(st, "length");
        ulong flags = s.Flags(st, "flags", IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE);
        var access = ((flags & IommuIoasMapFlags.READABLE) != 0 ? IommuSim.Hardware.PageTables.Access.Read : IommuSim.Hardware.PageTables.Access.None)
                     | ((flags & IommuIoasMapFlags.WRITEABLE) != 0 ? IommuSim.Hardware.PageTables.Access.Write : IommuSim.Hardware.PageTables.Access.None);
        if (access == IommuSim.Hardware.PageTables.Access.None || len == 0 || ((iova | gpa | len) & 0xFFF) != 0 || gpa > g.Vm.MemoryBytes
            || len > g.Vm.MemoryBytes - gpa || iova > g.Stage1.MaxInput || len - 1 > g.Stage1.MaxInput - iova)
            return CallResult.Of(Errno.EINVAL);
        try
        {
            g.Stage1.Map(iova, gpa, len, access, maxLeafShift: 12);
        }
        catch (Vm.GuestRamExhaustedException)
        {
            return CallResult.Of(Errno.ENOMEM);
        }
        catch (InvalidOperationException)
        {
            return CallResult.Of(Errno.EEXIST);
        }
        return new CallResult();
    }

    private static CallResult GuestSmmuUnmap(ScriptSession s, Statement st)
    {
        if (s.SmmuGuests.GetValueOrDefault(s.Num(st, "ste0")) is not { } g) return CallResult.Of(Errno.ENOENT);
        ulong iova = s.Num(st, "iova"), len = s.Num(st, "length");
        if (len == 0 || ((iova | len) & 0xFFF) != 0 || iova > g.Stage1.MaxInput || len - 1 > g.Stage1.MaxInput - iova) return CallResult.Of(Errno.EINVAL);
        try
        {
            return new CallResult().Hex("length", g.Stage1.Unmap(iova, len));
        }
        catch (InvalidOperationException)
        {
            return CallResult.Of(Errno.EINVAL); // would split a block
        }
    }

    /// <summary>SMMUv3 commands through the vIOMMU: how long the SMMU took, in simulated ns (commands and CMD_SYNCs).</summary>
    private static CallResult ViommuInvalidateOut(ScriptSession s, Statement st, CallResult r)
        => st.Has("cmds") ? r.Dec("sim_ns", (ulong)Math.Max(0, s.Kernel.Port.NowPs - s.MarkPs) / 1000) : r;

    private static IommuHwptInvalidate ViommuInvalidateIn(ScriptSession s, Statement st, IommuHwptInvalidate c)
    {
        s.MarkPs = s.Kernel.Port.NowPs;
        SmmuCmds.TryParse(s.Raw(st, "cmds"), out var cmds);
        c.data_arm_smmuv3 = cmds.Count == 0 ? null : cmds.Select(x => new IommuViommuArmSmmuv3Invalidate { cmd0 = x.C0, cmd1 = x.C1 }).ToArray();
        if (!st.Has("entry_num")) c.entry_num = (uint)cmds.Count;
        if (!st.Has("entry_len")) c.entry_len = 16;
        return c;
    }
}

/// <summary>
/// The script's spelling of SMMUv3 commands (Linux's CMDQ_OP_* names): TLBI_NH_VA/asid=1/addr=0x100000[/leaf][/num=N],
/// TLBI_NH_ASID/asid=1, TLBI_NH_ALL, TLBI_NSNH_ALL, TLBI_S2_IPA/addr=…, TLBI_S12_VMALL, CFGI_CD/sid=…/ssid=…,
/// CFGI_CD_ALL/sid=…, CFGI_STE/sid=…, ATC_INV/sid=…/addr=…/size=…, CMD_SYNC, PRI_RESP, RESUME, or RAW/WORD0/WORD1.
/// Fields a guest does not set (vmid) may be given too: the kernel overwrites them.
/// </summary>
internal static class SmmuCmds
{
    private static readonly Dictionary<string, SmmuOpcode> Ops = new(StringComparer.Ordinal)
    {
        ["PREFETCH_CFG"] = SmmuOpcode.PrefetchConfig, ["CFGI_STE"] = SmmuOpcode.CfgiSte, ["CFGI_ALL"] = SmmuOpcode.CfgiSteRange,
        ["CFGI_CD"] = SmmuOpcode.CfgiCd, ["CFGI_CD_ALL"] = SmmuOpcode.CfgiCdAll, ["TLBI_NH_ALL"] = SmmuOpcode.TlbiNhAll,
        ["TLBI_NH_ASID"] = SmmuOpcode.TlbiNhAsid, ["TLBI_NH_VA"] = SmmuOpcode.TlbiNhVa, ["TLBI_NH_VAA"] = SmmuOpcode.TlbiNhVaa,
        ["TLBI_S12_VMALL"] = SmmuOpcode.TlbiS12Vmall, ["TLBI_S2_IPA"] = SmmuOpcode.TlbiS2Ipa, ["TLBI_NSNH_ALL"] = SmmuOpcode.TlbiNsnhAll,
        ["ATC_INV"] = SmmuOpcode.AtcInv, ["PRI_RESP"] = SmmuOpcode.PriResp, ["RESUME"] = SmmuOpcode.Resume, ["CMD_SYNC"] = SmmuOpcode.CmdSync,
    };

    public static bool TryParse(string text, out List<(ulong C0, ulong C1)> cmds) => TryParse(text, out cmds, out _);

    public static bool TryParse(string text, out List<(ulong C0, ulong C1)> cmds, out string? error)
    {
        cmds = [];
        error = null;
        if (text.Length == 0) return true;
        foreach (var item in text.Split(','))
        {
            var parts = item.Split('/');
            if (parts[0] == "RAW")
            {
                if (parts.Length != 3 || !ScriptParser.TryParseNumber(parts[1], out ulong w0) || !ScriptParser.TryParseNumber(parts[2], out ulong w1))
                {
                    error = $"'{item}': RAW needs two words (RAW/WORD0/WORD1)";
                    return false;
                }
                cmds.Add((w0, w1));
                continue;
            }
            if (!Ops.TryGetValue(parts[0], out var op))
            {
                error = $"'{parts[0]}' is not an SMMUv3 command (allowed: {string.Join(", ", Ops.Keys)}, RAW)";
                return false;
            }
            var c = new SmmuCommand { Opcode = op };
            foreach (var kv in parts.Skip(1))
            {
                if (kv == "leaf") { c = c with { Leaf = true }; continue; }
                int eq = kv.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0 || !ScriptParser.TryParseNumber(kv[(eq + 1)..], out ulong v))
                {
                    error = $"'{kv}' in '{item}' is not key=number or leaf";
                    return false;
                }
                // Each field has its width in the 16-byte command; a wider value is a parse error, never a truncation.
                ulong max = kv[..eq] switch
                {
                    "sid" => uint.MaxValue, "ssid" => 0xFFFFF, "vmid" or "asid" => ushort.MaxValue, "num" or "scale" => 31,
                    "tg" or "ttl" => 3, "size" => 63, "range" => 31, _ => ulong.MaxValue,
                };
                if (v > max)
                {
                    error = $"'{kv}' in '{item}': {ArgKinds.TooWide("the command field", max)}";
                    return false;
                }
                switch (kv[..eq])
                {
                    case "sid": c = c with { Sid = (uint)v }; break;
                    case "ssid": c = c with { Ssid = (uint)v, SubstreamValid = true }; break;
                    case "vmid": c = c with { Vmid = (ushort)v }; break;
                    case "asid": c = c with { Asid = (ushort)v }; break;
                    case "addr": c = c with { Address = v }; break;
                    case "num": c = c with { Num = (byte)v }; break; // CMDQ_TLBI_0_NUM (range TLBI: count − 1)
                    case "scale": c = c with { Scale = (byte)v }; break;
                    case "tg": c = c with { Tg = (byte)v }; break;
                    case "ttl": c = c with { Ttl = (byte)v }; break;
                    case "size": c = c with { Pages = (uint)v }; break;
                    case "range": c = c with { Range = (byte)v }; break;
                    default:
                        error = $"'{kv[..eq]}' in '{item}' is not a command field (sid, ssid, vmid, asid, addr, num, scale, tg, ttl, size, range, leaf)";
                        return false;
                }
            }
            c.Encode(out ulong d0, out ulong d1);
            cmds.Add((d0, d1));
        }
        return true;
    }
}
