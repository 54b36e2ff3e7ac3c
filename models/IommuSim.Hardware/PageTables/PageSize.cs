namespace IommuSim.Hardware.PageTables;

/// <summary>Leaf sizes of x86-64 / VT-d page tables. The value is log2 of the size in bytes.</summary>
public enum PageSize : byte
{
    Size4K = 12,
    Size2M = 21,
    Size1G = 30,
}

public static class PageSizes
{
    public static ulong Bytes(this PageSize s) => 1UL << (int)s;

    /// <summary>Table level whose entry maps a page of this size (1 = PTE, 2 = PDE, 3 = PDPE).</summary>
    public static int LeafLevel(this PageSize s) => ((int)s - 12) / 9 + 1;

    public static PageSize FromLeafLevel(int level) => level switch
    {
        1 => PageSize.Size4K,
        2 => PageSize.Size2M,
        3 => PageSize.Size1G,
        _ => throw new ArgumentOutOfRangeException(nameof(level), level, "leaves exist only at levels 1-3"),
    };

    public static string Label(this PageSize s) => s switch
    {
        PageSize.Size4K => "4K",
        PageSize.Size2M => "2M",
        PageSize.Size1G => "1G",
        _ => s.ToString(),
    };

    public static bool TryParse(string? text, out PageSize size)
    {
        switch ((text ?? "").Trim().ToUpperInvariant())
        {
            case "4K": case "4KIB": case "4096": size = PageSize.Size4K; return true;
            case "2M": case "2MIB": size = PageSize.Size2M; return true;
            case "1G": case "1GIB": size = PageSize.Size1G; return true;
            default: size = PageSize.Size4K; return false;
        }
    }
}

/// <summary>Access rights of a mapping or a request.</summary>
[Flags]
public enum Access : byte
{
    None = 0,
    Read = 1,
    Write = 2,
    ReadWrite = Read | Write,
}
