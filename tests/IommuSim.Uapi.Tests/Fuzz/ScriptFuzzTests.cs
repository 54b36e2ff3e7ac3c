using CsCheck;
using IommuSim.Uapi.Script;

namespace IommuSim.Uapi.Tests.Fuzz;

/// <summary>
/// `iommusim uapi` on random scripts built from the call table: any call, any of its keys, values from the corners
/// of each field (0, 1, page multiples, the field's maximum and one past it, 2^63, 2^64 − 1, bound variables). The
/// only allowed outcomes are exit 0 (ran), 2 (a parse error or a too-wide variable, with a FILE:LINE message) or 3;
/// never an exception.
/// </summary>
public class ScriptFuzzTests
{
    public const int Scripts = 1500;

    private static readonly string[] Calls = ScriptCalls.Table.Keys.Order(StringComparer.Ordinal).ToArray();
    private static readonly string[] Vars = ["v0", "v1", "v2", "v3"];

    private static readonly ulong[] Corners =
    [
        0, 1, 2, 3, 0x1000, 0x2000, 0x20_0000, 0x4000_0000, 0x100000, 0xFEE0_0000, 0xFFFF, 0x1_0000, 0x7FFF_FFFF,
        0xFFFF_FFFF, 0x1_0000_0000, 1UL << 47, 1UL << 48, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000,
        ulong.MaxValue - 0xFFF, ulong.MaxValue,
    ];

    /// <summary>One value for a key of the given kind, chosen by <paramref name="r"/> (and <paramref name="bound"/> variables).</summary>
    private static string Value(string key, ArgKind kind, int r, int bound)
    {
        if (r % 17 == 0 && bound > 0 && kind is NumberKind or FlagsKind) return "$" + Vars[r / 17 % bound];
        // Object ids and fds are small numbers: mostly pick live ones, so that calls get past their lookups.
        if (kind is NumberKind && r % 4 != 3 && (key == "id" || key.EndsWith("_id", StringComparison.Ordinal))) return (1 + r % 7).ToString();
        if (kind is NumberKind && r % 4 != 3 && key is "fd" or "container" or "iommufd") return (3 + r % 6).ToString();
        if (kind is NumberKind && r % 4 != 3 && key == "group") return (3 + r % 2).ToString();
        switch (kind)
        {
            case NumberKind k:
                {
                    ulong v = Corners[r % Corners.Length] & k.Max;   // mostly values the field can hold
                    if (r % 11 == 1) v = k.Max; else if (r % 97 == 2 && k.Max < ulong.MaxValue) v = k.Max + 1;
                    return "0x" + v.ToString("x");
                }
            case FlagsKind f:
                {
                    var names = f.Names.Keys.ToArray();
                    if (r % 5 == 4) return "0x" + (Corners[r % Corners.Length] & (r % 97 == 4 ? ulong.MaxValue : f.Max)).ToString("x");
                    return r % 3 == 0 && names.Length > 1 ? names[r % names.Length] + "|" + names[(r / 3) % names.Length] : names[r % names.Length];
                }
            case DeviceKind: return (r % 3) switch { 0 => "0000:03:00.0", 1 => "0000:04:00.0", _ => "0000:09:1f.7" };
            case RangesKind: return (r % 3) switch { 0 => "", 1 => "0x1000-0x1fff", _ => "0-0xffffffffffffffff,0x10-0x1" };
            case EntriesKind: return (r % 3) switch { 0 => "", 1 => "0x100000/1/LEAF", _ => "0/U64_MAX,0xfff/0xffffffffffffffff" };
            case PageSizeKind: return (r % 3) switch { 0 => "4K", 1 => "2M", _ => "1G" };
            case OpKind: return r % 2 == 0 ? "R" : "W";
            default: return "0";
        }
    }

    /// <summary>A script line from (call, key choices, value choices): required keys always, the others by bit.</summary>
    private static string Line(int call, int keyBits, int[] values, ref int bound)
    {
        string name = Calls[call % Calls.Length];
        var spec = ScriptCalls.Table[name];
        var parts = new List<string>();
        int i = 0;
        foreach (var (key, kind) in spec.Keys.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            bool take = spec.Required.Contains(key) || (keyBits >> (i % 30) & 1) != 0;
            if (key is "size" or "trailing" && keyBits % 5 != 0) take = false; // the struct-size probes, now and then
            if (take) parts.Add($"{key}={Value(key, kind, values[i % values.Length], bound)}");
            i++;
        }
        string line = name + (parts.Count > 0 ? " " + string.Join(' ', parts) : "");
        if (spec.Binds is not null && bound < Vars.Length) line = $"{Vars[bound++]} = {line}";
        return line;
    }

    private static readonly Gen<string> Script =
        Gen.Select(Gen.Int[0, 1000], Gen.Int, Gen.Int[0, 10_000].Array[8]).Array[1, 25].Select(lines =>
        {
            int bound = 0;
            // A start that reaches deeper: memory, an IOAS with a mapping, a bound and attached device.
            var text = new List<string>
            {
                "v0 = MMAP length=0x400000", "v1 = IOAS_ALLOC", "v2 = DEVICE_BIND_IOMMUFD device=0000:03:00.0",
                "IOAS_MAP ioas_id=$v1 user_va=$v0 length=0x200000 iova=0x100000 flags=FIXED_IOVA|READABLE|WRITEABLE",
                "DEVICE_ATTACH_IOMMUFD_PT dev_id=$v2 pt_id=$v1",
            };
            bound = 3;
            foreach (var (call, keys, values) in lines) text.Add(Line(call, keys, values, ref bound));
            return string.Join('\n', text) + "\n";
        });

    [Fact]
    public void RandomScripts_ExitWith0_2_or3_AndNeverThrow()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"uapi-fuzz-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            int n = 0, ran = 0;
            long iter = long.TryParse(Environment.GetEnvironmentVariable("IOMMUSIM_FUZZ_SCRIPTS"), out long k) ? k : Scripts;
            string? seed = Environment.GetEnvironmentVariable("IOMMUSIM_FUZZ_SEED") switch { null or "" => "6RQEg2QAluN1", "random" => null, var g => g };
            Script.Sample(text =>
            {
                string path = Path.Combine(dir, $"s{n++}.uapi");
                File.WriteAllText(path, text);
                var o = new StringWriter();
                var e = new StringWriter();
                int rc = ScriptRunner.Run(path, o, e);
                File.Delete(path);
                if (rc == 0) ran++;
                if (rc is not (0 or 2 or 3)) throw new InvalidOperationException($"exit {rc}\n{e}");
                if (rc == 2 && !e.ToString().StartsWith(path + ":", StringComparison.Ordinal))
                    throw new InvalidOperationException($"exit 2 without FILE:LINE: {e}");
            }, iter: iter, threads: 1, seed: seed, print: t => t);
            // Most scripts must get past the parser, or the calls would go untested.
            Assert.True(ran > iter / 4, $"only {ran} of {iter} scripts ran");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
