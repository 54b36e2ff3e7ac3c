using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Cli.UapiScript;

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
}

internal sealed record NumberKind : ArgKind;
internal sealed record DeviceKind : ArgKind;
internal sealed record RangesKind : ArgKind;
internal sealed record EntriesKind : ArgKind;
internal sealed record PageSizeKind : ArgKind;
internal sealed record OpKind : ArgKind;

/// <summary>Symbolic names joined with '|', or a number.</summary>
internal sealed record FlagsKind(IReadOnlyDictionary<string, ulong> Names) : ArgKind
{
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
        NumberKind => ScriptParser.TryParseNumber(text, out _) ? null : "not a number (decimal, 0x hex, or with a K/M/G suffix)",
        FlagsKind f => f.TryParse(text, out _) ? null : $"unknown name (allowed: {string.Join(", ", f.Names.Keys)}, or a number)",
        DeviceKind => RequesterId.TryParse(text, out _) ? null : "not a PCI address like 0000:03:00.0",
        RangesKind => TryRanges(text, out _) ? null : "expected START-LAST,START-LAST (inclusive) or nothing",
        EntriesKind => TryEntries(text, out _) ? null : "expected ADDR/NPAGES[/LEAF],… or nothing",
        PageSizeKind => PageSizes.TryParse(text, out _) ? null : "page size must be 4K, 2M or 1G",
        OpKind => text is "R" or "W" ? null : "op must be R or W",
        _ => null,
    };

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
