using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vm;

namespace IommuSim.Uapi.Script;

/// <summary>VM and guest helpers of the script language: guest RAM, and a guest's own VT-d stage-1 tables in it.</summary>
internal static class VmCalls
{
    public static IEnumerable<(string, CallSpec)> Calls()
    {
        var n = ArgKind.Number;
        yield return ("VM_CREATE", ScriptCalls.Spec("va", ["memory"], VmCreate, ("memory", n)));
        yield return ("GUEST_PGTABLE_ALLOC", ScriptCalls.Spec("pgtbl_addr", ["vm"], GuestPgtableAlloc, ("vm", n), ("levels", n)));
        // The guest's map flags are spelled as IOAS_MAP's (READABLE, WRITEABLE).
        yield return ("GUEST_MAP", ScriptCalls.Spec(null, ["pgtable", "vm", "iova", "gpa", "length"], GuestMap,
            ("pgtable", n), ("vm", n), ("iova", n), ("gpa", n), ("length", n), ("flags", ArgKind.FlagsOf(typeof(IommuIoasMapFlags))), ("pagesize", ArgKind.PageSize)));
        yield return ("GUEST_UNMAP", ScriptCalls.Spec(null, ["pgtable", "vm", "iova", "length"], GuestUnmap, ("pgtable", n), ("vm", n), ("iova", n), ("length", n)));
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
        ulong flags = s.Flags(st, "flags", IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE);
        var access = ((flags & IommuIoasMapFlags.READABLE) != 0 ? Access.Read : Access.None)
                     | ((flags & IommuIoasMapFlags.WRITEABLE) != 0 ? Access.Write : Access.None);
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
}
