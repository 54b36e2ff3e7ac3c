using System.ComponentModel;
using System.Globalization;

namespace IommuSim.Engine.Units;

/// <summary>A 64-bit address written as hex (<c>0x100000000</c>) or decimal.</summary>
[TypeConverter(typeof(AddressConverter))]
public readonly record struct Address(ulong Value)
{
    public static bool TryParse(string? text, out Address value, out string error)
    {
        value = default;
        error = "";
        string s = (text ?? "").Trim().Replace("_", "", StringComparison.Ordinal);
        bool ok = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong v)
            : ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        if (!ok) { error = $"'{text}' is not an address (hex 0x… or decimal)"; return false; }
        value = new Address(v);
        return true;
    }

    public static Address Parse(string text)
        => TryParse(text, out var v, out var err) ? v : throw new FormatException(err);

    public override string ToString() => "0x" + Value.ToString("x", CultureInfo.InvariantCulture);

    public static implicit operator ulong(Address a) => a.Value;
}

public sealed class AddressConverter : TypeConverter
{
    public override bool CanConvertFrom(ITypeDescriptorContext? context, Type sourceType)
        => sourceType == typeof(string) || base.CanConvertFrom(context, sourceType);

    public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
        => value is string s ? Address.Parse(s) : base.ConvertFrom(context, culture, value);

    public override object? ConvertTo(ITypeDescriptorContext? context, CultureInfo? culture, object? value, Type destinationType)
        => destinationType == typeof(string) && value is Address a ? a.ToString() : base.ConvertTo(context, culture, value, destinationType);
}
