using System.Reflection;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.Script;

/// <summary>How a key's value is written and checked at parse time.</summary>
internal abstract record ArgKind
{
    public static readonly ArgKind Number = new NumberKind();
    public static readonly ArgKind Device = new DeviceKind();
    public static readonly ArgKind Ranges = new RangesKind();
    public static readonly ArgKind Entries = new EntriesKind();
    public static readonly ArgKind PageSize = new PageSizeKind();
    public static readonly ArgKind Op = new OpKind();

    public static ArgKind Flags(params (string Name, ulong Value)[] names) => new FlagsKind(names.ToDictionary(n => n.Name, n => n.Value, StringComparer.Ordinal));

    /// <summary>
    /// The names and values of a uAPI constants class (its public constants in declaration order) or enum, with
    /// <paramref name="prefix"/> taken off each name and the names in <paramref name="except"/> (aliases, None) left out:
    /// the script spells a flag as the uAPI does, from one table.
    /// </summary>
    public static ArgKind FlagsOf(Type uapi, string prefix = "", params string[] except)
    {
        IEnumerable<(string Name, ulong Value)> all = uapi.IsEnum
            ? Enum.GetNames(uapi).Select(n => (n, Convert.ToUInt64(Enum.Parse(uapi, n), System.Globalization.CultureInfo.InvariantCulture)))
            : uapi.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral)
                .Select(f => (f.Name, Convert.ToUInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture)));
        var names = all.Where(n => n.Name.StartsWith(prefix, StringComparison.Ordinal))
            .Select(n => (Name: n.Name[prefix.Length..], n.Value))
            .Where(n => !except.Contains(n.Name, StringComparer.Ordinal))
            .ToArray();
        if (names.Length == 0) throw new ArgumentException($"{uapi.Name} has no constants named {prefix}*", nameof(uapi));
        return Flags(names);
    }
}

/// <summary>A number that fills a uAPI field of <paramref name="Bits"/> bits (signed: an fd, an int).</summary>
internal sealed record NumberKind(int Bits = 64, bool Signed = false) : ArgKind
{
    public ulong Max => Signed ? (1UL << (Bits - 1)) - 1 : Bits == 64 ? ulong.MaxValue : (1UL << Bits) - 1;
    public string Type => (Signed ? "s" : "u") + Bits;
}
internal sealed record DeviceKind : ArgKind;
internal sealed record RangesKind : ArgKind;
internal sealed record EntriesKind : ArgKind;
internal sealed record PageSizeKind : ArgKind;
internal sealed record OpKind : ArgKind;

/// <summary>Symbolic names joined with '|', or a number.</summary>
internal sealed record FlagsKind(IReadOnlyDictionary<string, ulong> Names, int Bits = 64) : ArgKind
{
    public ulong Max => Bits == 64 ? ulong.MaxValue : (1UL << Bits) - 1;

    public bool TryParse(string text, out ulong value)
    {
        value = 0;
        foreach (var part in text.Split('|'))
        {
            if (Names.TryGetValue(part, out ulong v)) value |= v;
            else if (ScriptParser.TryParseNumber(part, out ulong n)) value |= n;
            else return false;
        }
        return true;
    }
}

internal static class ArgKinds
{
    /// <summary>Null when <paramref name="text"/> is valid for <paramref name="kind"/>, else what is wrong.</summary>
    public static string? Check(ArgKind kind, string text) => kind switch
    {
        NumberKind k => !ScriptParser.TryParseNumber(text, out ulong v) ? "not a number (decimal, 0x hex, or with a K/M/G suffix)"
            : v > k.Max ? TooWide(k.Type, k.Max) : null,
        FlagsKind f => !f.TryParse(text, out ulong v) ? $"unknown name (allowed: {string.Join(", ", f.Names.Keys)}, or a number)"
            : v > f.Max ? TooWide("u" + f.Bits, f.Max) : null,
        DeviceKind => RequesterId.TryParse(text, out _) ? null : "not a PCI address like 0000:03:00.0",
        RangesKind => TryRanges(text, out _) ? null : "expected START-LAST,START-LAST (inclusive) or nothing",
        EntriesKind => TryEntries(text, out _) ? null : "expected ADDR/NPAGES[/LEAF],… or nothing",
        PageSizeKind => PageSizes.TryParse(text, out _) ? null : "page size must be 4K, 2M or 1G",
        OpKind => text is "R" or "W" ? null : "op must be R or W",
        SmmuCmdsKind => SmmuCmds.TryParse(text, out _, out string? error) ? null : error,
        _ => null,
    };

    /// <summary>What is wrong with a value that does not fit its uAPI field (the kernel would see it truncated).</summary>
    public static string TooWide(string type, ulong max) => $"wider than its uAPI field ({type}: at most 0x{max:x})";

    /// <summary>
    /// The width of each uAPI field the script names, by key (include/uapi/linux/iommufd.h, vfio.h): object ids,
    /// flags, counts and lengths of u32 fields, the u16 op fields, and s32 file descriptors. Keys not listed are
    /// u64 (addresses, lengths, iovas) or not uAPI fields at all (helpers' arguments).
    /// </summary>
    private static readonly Dictionary<string, (int Bits, bool Signed)> FieldWidths = new(StringComparer.Ordinal)
    {
        ["id"] = (32, false), ["ioas_id"] = (32, false), ["dev_id"] = (32, false), ["pt_id"] = (32, false),
        ["hwpt_id"] = (32, false), ["fault_id"] = (32, false), ["viommu_id"] = (32, false), ["access_id"] = (32, false),
        ["veventq_id"] = (32, false), ["hw_queue_id"] = (32, false), ["veventq_depth"] = (32, false), ["index"] = (32, false), ["__reserved"] = (32, false),
        ["object_id"] = (32, false), ["dst_ioas_id"] = (32, false), ["src_ioas_id"] = (32, false),
        ["flags"] = (32, false), ["option_id"] = (32, false), ["data_type"] = (32, false), ["in_data_type"] = (32, false), ["data_len"] = (32, false),
        ["num_iovas"] = (32, false), ["entry_len"] = (32, false), ["entry_num"] = (32, false), ["addr_width"] = (32, false),
        ["argsz"] = (32, false), ["pasid"] = (32, false), ["cookie"] = (32, false), ["code"] = (32, false),
        ["count"] = (32, true), ["prot"] = (32, false), ["op"] = (16, false), ["nr"] = (8, false),
        ["fd"] = (32, true), ["iommufd"] = (32, true), ["container"] = (32, true), ["group"] = (32, true),
    };

    /// <summary>(call, key) pairs whose field is wider than the key usually is: the VFIO ioctls that take an
    /// unsigned long argument, and the VIOMMU_ALLOC type (u32 like the default).</summary>
    private static readonly HashSet<(string, string)> WideFields = [("SET_IOMMU", "type"), ("CHECK_EXTENSION", "extension")];

    /// <summary>The kind of <paramref name="key"/> of <paramref name="call"/> with its field width applied.</summary>
    public static ArgKind WithWidth(string call, string key, ArgKind kind)
    {
        if (WideFields.Contains((call, key))) return kind;
        if (key == "type" && call is "VIOMMU_ALLOC" or "VEVENTQ_ALLOC" or "HW_QUEUE_ALLOC") return kind is FlagsKind vf ? vf with { Bits = 32 } : kind;
        if (!FieldWidths.TryGetValue(key, out var w)) return kind;
        return kind switch
        {
            NumberKind => new NumberKind(w.Bits, w.Signed),
            FlagsKind f => f with { Bits = w.Bits },
            _ => kind,
        };
    }

    public static bool TryRanges(string text, out List<(ulong Start, ulong Last)> ranges)
    {
        ranges = [];
        if (text.Length == 0) return true;
        foreach (var item in text.Split(','))
        {
            int dash = item.IndexOf('-', StringComparison.Ordinal);
            if (dash <= 0) return false;
            if (!ScriptParser.TryParseNumber(item[..dash], out ulong s) || !ScriptParser.TryParseNumber(item[(dash + 1)..], out ulong l)) return false;
            ranges.Add((s, l));
        }
        return true;
    }

    /// <summary>VT-d stage-1 invalidation entries: ADDR/NPAGES[/LEAF or /FLAGS].</summary>
    public static bool TryEntries(string text, out List<(ulong Addr, ulong Npages, uint Flags)> entries)
    {
        entries = [];
        if (text.Length == 0) return true;
        foreach (var item in text.Split(','))
        {
            var parts = item.Split('/');
            if (parts.Length is < 2 or > 3) return false;
            if (!ScriptParser.TryParseNumber(parts[0], out ulong addr)) return false;
            ulong npages;
            if (parts[1] is "ALL" or "U64_MAX") npages = ulong.MaxValue;
            else if (!ScriptParser.TryParseNumber(parts[1], out npages)) return false;
            uint flags = 0;
            if (parts.Length == 3)
            {
                if (parts[2] == "LEAF") flags = 1;
                else if (ScriptParser.TryParseNumber(parts[2], out ulong f) && f <= uint.MaxValue) flags = (uint)f;
                else return false;
            }
            entries.Add((addr, npages, flags));
        }
        return true;
    }
}
