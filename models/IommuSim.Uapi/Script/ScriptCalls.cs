namespace IommuSim.Uapi.Script;

/// <summary>A call the script language knows: its keys, which are required, what NAME = binds, and how to run it.</summary>
internal sealed record CallSpec(
    IReadOnlyDictionary<string, ArgKind> Keys,
    IReadOnlyList<string> Required,
    string? Binds,
    Func<ScriptSession, Statement, CallResult> Run);

/// <summary>
/// The calls of docs/uapi-script.md, by front end: process and memory helpers (<see cref="ProcessCalls"/>),
/// VM and guest helpers (<see cref="VmCalls"/>), iommufd (<see cref="IommufdCalls"/>) and VFIO
/// (<see cref="VfioCalls"/>). Each binds script keys to the kernel struct fields of the same name and prints
/// the struct's out fields; the kernel's rules (ioctl dispatch, errnos) are the model's.
/// </summary>
internal static class ScriptCalls
{
    public static bool IsResultWord(string w) => w is "OK" or "FAULT" || Enum.TryParse<Errno>(w, out var e) && e != Errno.OK;

    public static readonly IReadOnlyDictionary<string, CallSpec> Table = WithFieldWidths(Build());

    /// <summary>Calls that return a new fd, and the out field holding it ("NAME, FD = CALL" binds it).</summary>
    public static readonly IReadOnlyDictionary<string, string> FdOutputs = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["FAULT_QUEUE_ALLOC"] = "out_fault_fd",
        ["VEVENTQ_ALLOC"] = "out_veventq_fd",
    };

    internal static CallSpec Spec(string? binds, string[] required, Func<ScriptSession, Statement, CallResult> run, params (string Key, ArgKind Kind)[] keys)
        => new(keys.ToDictionary(k => k.Key, k => k.Kind, StringComparer.Ordinal), required, binds, run);

    private static Dictionary<string, CallSpec> Build()
    {
        var table = new Dictionary<string, CallSpec>(StringComparer.Ordinal);
        foreach (var part in new[] { ProcessCalls.Calls(), VmCalls.Calls(), IommufdCalls.Calls(), VfioCalls.Calls() })
            foreach (var (name, spec) in part) table.Add(name, spec);
        return table;
    }

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
}
