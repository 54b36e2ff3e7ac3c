using System.ComponentModel;
using System.Globalization;

namespace IommuSim.Engine.Units;

/// <summary>
/// A byte count that configs write as a number or with a binary suffix:
/// <c>4096</c>, <c>64KiB</c>, <c>2MiB</c>, <c>1G</c> (K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024),
/// or hex (<c>0x1000</c>).
/// </summary>
[TypeConverter(typeof(ByteSizeConverter))]
public readonly record struct ByteSize(long Bytes)
{
    public static ByteSize Parse(string text)
        => TryParse(text, out var v, out var err) ? v : throw new FormatException(err);

    public static bool TryParse(string? text, out ByteSize value, out string error)
    {
        value = default;
        error = "";
        string s = (text ?? "").Trim();
        if (s.Length == 0) { error = "empty size"; return false; }
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            if (ulong.TryParse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong hx) && hx <= long.MaxValue)
            {
                value = new ByteSize((long)hx);
                return true;
            }
            error = $"'{s}' is not a valid hex size";
            return false;
        }
        int i = 0;
        while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '-' || s[i] == '.')) i++;
        string num = s[..i];
        string unit = s[i..].Trim();
        long mult = unit.ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KB" or "KIB" => 1L << 10,
            "M" or "MB" or "MIB" => 1L << 20,
            "G" or "GB" or "GIB" => 1L << 30,
            "T" or "TB" or "TIB" => 1L << 40,
            _ => 0,
        };
        if (mult == 0) { error = $"'{s}': unknown unit '{unit}' (allowed: bytes, K/KiB, M/MiB, G/GiB, T/TiB)"; return false; }
        if (!decimal.TryParse(num, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out decimal d))
        {
            error = $"'{s}' is not a size (examples: 4096, 64KiB, 2MiB, 1G)";
            return false;
        }
        decimal bytes;
        try { bytes = d * mult; }
        catch (OverflowException) { error = $"'{s}' is too large"; return false; }
        if (bytes < 0) { error = $"'{s}': a size cannot be negative"; return false; }
        if (bytes != decimal.Truncate(bytes) || bytes > long.MaxValue) { error = $"'{s}' is not a whole number of bytes"; return false; }
        value = new ByteSize((long)bytes);
        return true;
    }

    /// <summary>Shortest exact rendering: 2MiB, 64KiB, 1536.</summary>
    public override string ToString()
    {
        if (Bytes != 0)
        {
            foreach (var (shift, suffix) in new[] { (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB") })
                if (Bytes % (1L << shift) == 0) return $"{Bytes >> shift}{suffix}";
        }
        return Bytes.ToString(CultureInfo.InvariantCulture);
    }

    public static implicit operator long(ByteSize s) => s.Bytes;
}

public sealed class ByteSizeConverter : TypeConverter
{
    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType)
        => sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
        => value is string s ? ByteSize.Parse(s) : base.ConvertFrom(context, culture, value);

    public override object? ConvertTo(ITypeDescriptorContext? context, CultureInfo? culture, object? value, Type destinationType)
        => destinationType == typeof(string) && value is ByteSize b ? b.ToString() : base.ConvertTo(context, culture, value, destinationType);
}
