using System.Globalization;

namespace IommuSim.Hardware.Iommu.Tables;

/// <summary>PCI requester id (bus/device/function), as the IOMMU sees it; written "0000:03:00.0".</summary>
public readonly record struct RequesterId(ushort Value)
{
    public RequesterId(int bus, int device, int function)
        : this((ushort)((bus << 8) | (device << 3) | function)) { }

    public int Bus => Value >> 8;
    public int Device => (Value >> 3) & 0x1F;
    public int Function => Value & 7;
    public int DevFn => Value & 0xFF;

    /// <summary>Parses "SSSS:BB:DD.F" or "BB:DD.F" (segment must be 0).</summary>
    public static bool TryParse(string? text, out RequesterId rid)
    {
        rid = default;
        string s = (text ?? "").Trim();
        var parts = s.Split(':');
        if (parts.Length == 3)
        {
            if (!int.TryParse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int seg) || seg != 0) return false;
            parts = [parts[1], parts[2]];
        }
        if (parts.Length != 2) return false;
        var df = parts[1].Split('.');
        if (df.Length != 2) return false;
        if (!int.TryParse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int bus) || bus > 255) return false;
        if (!int.TryParse(df[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int dev) || dev > 31) return false;
        if (!int.TryParse(df[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int fn) || fn > 7) return false;
        rid = new RequesterId(bus, dev, fn);
        return true;
    }

    public override string ToString() => $"0000:{Bus:x2}:{Device:x2}.{Function:x}";
}
