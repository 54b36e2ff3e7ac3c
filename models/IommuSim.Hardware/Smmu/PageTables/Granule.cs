namespace IommuSim.Hardware.Smmu.PageTables;

/// <summary>VMSAv8-64 translation granule (SMMU_IDR5.GRAN4K/16K/64K; CD.TG0, STE.S2TG).</summary>
public enum Granule : byte
{
    Size4K = 12,
    Size16K = 14,
    Size64K = 16,
}

/// <summary>
/// Level arithmetic of VMSAv8-64 tables (Arm ARM D8.2, "Translation table walk"; 48-bit
/// addresses, no LPA/LPA2). Levels are numbered 0–3 as Arm does; level 3 holds pages. A table
/// level resolves <c>granuleShift − 3</c> bits (9, 11 or 13); the start level resolves what is
/// left of the input size and, for stage 2, may be a concatenation of up to 16 tables.
/// </summary>
public static class Granules
{
    public const int MaxInputBits = 48;

    public static int Shift(this Granule g) => (int)g;

    public static ulong Bytes(this Granule g) => 1UL << (int)g;

    /// <summary>Address bits one table level resolves: 9 (4K), 11 (16K), 13 (64K).</summary>
    public static int BitsPerLevel(this Granule g) => (int)g - 3;

    /// <summary>Lowest bit of the input address that <paramref name="level"/> indexes.</summary>
    public static int LevelShift(this Granule g, int level) => (int)g + g.BitsPerLevel() * (3 - level);

    /// <summary>The start level a stage-1 table of <paramref name="inputBits"/> needs (no concatenation).</summary>
    public static int StartLevel(this Granule g, int inputBits) => 3 - (inputBits - (int)g - 1) / g.BitsPerLevel();

    /// <summary>Table levels of a walk from <paramref name="startLevel"/>.</summary>
    public static int Levels(int startLevel) => 4 - startLevel;

    /// <summary>Index bits at <paramref name="level"/>: all of a level's bits, or at the start level
    /// what the input size leaves (more than one table's worth means concatenated tables).</summary>
    public static int IndexBits(this Granule g, int level, int startLevel, int inputBits)
        => level == startLevel ? inputBits - g.LevelShift(level) : g.BitsPerLevel();

    public static int IndexAt(this Granule g, ulong address, int level, int startLevel, int inputBits)
        => (int)((address >> g.LevelShift(level)) & ((1UL << g.IndexBits(level, startLevel, inputBits)) - 1));

    /// <summary>True when <paramref name="level"/> can hold a block or page descriptor with 48-bit
    /// output: level 3 (page), level 2 (2M / 32M / 512M blocks) and, with 4K granules, level 1 (1G).</summary>
    public static bool LeafAllowed(this Granule g, int level) => level == 3 || level == 2 || (level == 1 && g == Granule.Size4K);

    /// <summary>Size (log2 bytes) a leaf at <paramref name="level"/> maps.</summary>
    public static int LeafShift(this Granule g, int level) => g.LevelShift(level);

    /// <summary>Checks a (granule, input size, start level) triple: the start level must resolve at
    /// least one bit and at most one table (stage 1) or 16 concatenated tables (stage 2).</summary>
    public static string? CheckGeometry(this Granule g, int inputBits, int startLevel, bool stage2)
    {
        if (inputBits < 25 || inputBits > MaxInputBits) return $"input size {inputBits} bits is outside 25..{MaxInputBits}";
        if (startLevel < 0 || startLevel > 3) return $"start level {startLevel} is outside 0..3";
        if (g == Granule.Size64K && startLevel == 0) return "64K granule tables start at level 1 or below";
        int bits = inputBits - g.LevelShift(startLevel);
        if (bits < 1) return $"start level {startLevel} resolves no bits of a {inputBits}-bit input";
        int max = g.BitsPerLevel() + (stage2 ? 4 : 0);
        if (bits > max) return $"start level {startLevel} would resolve {bits} bits (at most {max}{(stage2 ? ", 16 concatenated tables" : "")})";
        return null;
    }

    public static string Label(this Granule g) => g switch
    {
        Granule.Size4K => "4K",
        Granule.Size16K => "16K",
        _ => "64K",
    };

    public static bool TryParse(string? text, out Granule g)
    {
        switch ((text ?? "").Trim().ToUpperInvariant())
        {
            case "4K": case "4KIB": g = Granule.Size4K; return true;
            case "16K": case "16KIB": g = Granule.Size16K; return true;
            case "64K": case "64KIB": g = Granule.Size64K; return true;
            default: g = default; return false;
        }
    }
}
