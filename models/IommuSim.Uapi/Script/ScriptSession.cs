using System.Globalization;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Uapi;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vm;

namespace IommuSim.Uapi.Script;

/// <summary>The result of one call as the script prints and checks it.</summary>
internal sealed class CallResult
{
    /// <summary>"OK", an errno name, or "FAULT".</summary>
    public string Word { get; init; } = "OK";
    public List<(string Key, string Text, ulong? Value)> Fields { get; } = [];
    public ulong? Main { get; set; }

    public static CallResult Of(Errno rc) => new() { Word = rc == Errno.OK ? "OK" : rc.ToString() };

    public bool Ok => Word == "OK";

    public CallResult Hex(string key, ulong v)
    {
        Fields.Add((key, "0x" + v.ToString("x", CultureInfo.InvariantCulture), v));
        return this;
    }

    public CallResult Dec(string key, ulong v)
    {
        Fields.Add((key, v.ToString(CultureInfo.InvariantCulture), v));
        return this;
    }

    public CallResult Text(string key, string text)
    {
        Fields.Add((key, text, null));
        return this;
    }
}

/// <summary>A variable whose value does not fit the uAPI field it is passed in: the script is wrong (exit 2).</summary>
internal sealed class ScriptValueException(int line, string message) : Exception(message)
{
    public int Line { get; } = line;
}

/// <summary>Runtime state of a script: one process with one iommufd, its variables, VMs and devices.</summary>
internal sealed class ScriptSession
{
    public ScriptSession(IommuKernel kernel)
    {
        Kernel = kernel;
        // Page requests from PRI devices go to the fault queues of the HWPTs (or are refused).
        kernel.ListenForPageRequests();
        Process = new UserProcess(kernel);
        IommufdFd = Process.OpenIommufd(out var ictx);
        Ctx = ictx;
    }

    public IommuKernel Kernel { get; }
    public UserProcess Process { get; }
    public IommufdContext Ctx { get; }
    public int IommufdFd { get; }
    public Dictionary<string, ulong> Vars { get; } = new(StringComparer.Ordinal);
    public Dictionary<ulong, VirtualMachine> Vms { get; } = [];

    /// <summary>Guests' SMMUv3 CD + stage-1 tables (GUEST_SMMU_CD_ALLOC), by the STE word 0 that points at them.</summary>
    public Dictionary<ulong, Driver.ArmSmmuV3.ArmVsmmuGuest> SmmuGuests { get; } = [];

    /// <summary>Simulated time (ps) when a timed call started (vIOMMU invalidations print how long the SMMU took).</summary>
    public long MarkPs { get; set; }

    public string Raw(Statement s, string key) => s.Args[key].Text;

    public ulong Num(Statement s, string key, ulong dflt = 0)
    {
        if (!s.Args.TryGetValue(key, out var v)) return dflt;
        if (v.IsVariable) return Checked(s, key, Vars[v.VariableName]);
        ScriptParser.TryParseNumber(v.Text, out ulong n);
        return n;
    }

    /// <summary>A variable's value must fit the field it is passed in, as a literal must at parse time.</summary>
    private static ulong Checked(Statement s, string key, ulong value)
    {
        var kind = ScriptCalls.Table[s.Call].Keys[key];
        ulong max = kind switch { NumberKind k => k.Max, FlagsKind f => f.Max, _ => ulong.MaxValue };
        if (value <= max) return value;
        string type = kind switch { NumberKind k => k.Type, FlagsKind f => "u" + f.Bits, _ => "u64" };
        throw new ScriptValueException(s.Line, $"{key}={s.Args[key].Text} (0x{value:x}): {ArgKinds.TooWide(type, max)}");
    }

    public uint U32(Statement s, string key, uint dflt = 0) => unchecked((uint)Num(s, key, dflt));

    public ulong Flags(Statement s, string key, ulong dflt = 0)
    {
        if (!s.Args.TryGetValue(key, out var v)) return dflt;
        if (v.IsVariable) return Checked(s, key, Vars[v.VariableName]);
        var kind = (FlagsKind)ScriptCalls.Table[s.Call].Keys[key];
        kind.TryParse(v.Text, out ulong f);
        return f;
    }

    /// <summary>The device named by a BDF argument; the call fails with ENODEV when the platform has none there.</summary>
    public DeviceSpec? Device(Statement s, string key = "device")
        => RequesterId.TryParse(Raw(s, key), out var rid) ? Kernel.FindDevice(rid) : null;

    /// <summary>The iommufd context named by an fd argument (iommufd=, container=), or the script's own.</summary>
    public IommufdContext? Context(Statement s, string key)
        => s.Has(key) ? Process.Iommufd((int)Num(s, key)) : Ctx;
}
