using System.Globalization;

namespace IommuSim.Workloads.Trace;

/// <summary>
/// Streams a DMA trace (CSV: <c>time_ns,device,pasid,iova,bytes,op</c>) one line at a time, so a
/// trace of any length replays in constant memory. Malformed lines raise
/// <see cref="TraceFormatException"/> with the file and line number.
/// </summary>
public sealed class TraceReader : IDisposable
{
    public const string Header = "time_ns,device,pasid,iova,bytes,op";

    private readonly TextReader _reader;
    private readonly string _file;
    private readonly Dictionary<string, long> _lastTime = [];
    private readonly IReadOnlySet<string>? _devices;
    private int _line;

    public TraceReader(TextReader reader, string fileName, IReadOnlySet<string>? knownDevices = null)
    {
        _reader = reader;
        _file = fileName;
        _devices = knownDevices;
        ReadHeader();
    }

    public static TraceReader Open(string path, IReadOnlySet<string>? knownDevices = null)
        => new(new StreamReader(path, new FileStreamOptions { BufferSize = 1 << 16, Options = FileOptions.SequentialScan }), path, knownDevices);

    private void ReadHeader()
    {
        while (_reader.ReadLine() is string raw)
        {
            _line++;
            string l = raw.Trim();
            if (l.Length == 0 || l[0] == '#') continue;
            if (!string.Equals(l.Replace(" ", "", StringComparison.Ordinal), Header, StringComparison.OrdinalIgnoreCase))
                throw new TraceFormatException(_file, _line, $"the header line must be '{Header}'");
            return;
        }
        throw new TraceFormatException(_file, Math.Max(1, _line), $"empty trace: the header line '{Header}' is required");
    }

    /// <summary>The next record, or null at the end of the file.</summary>
    public TraceRecord? Next()
    {
        while (_reader.ReadLine() is string raw)
        {
            _line++;
            var l = raw.AsSpan().Trim();
            if (l.Length == 0 || l[0] == '#') continue;
            return Parse(l);
        }
        return null;
    }

    private TraceRecord Parse(ReadOnlySpan<char> l)
    {
        Span<Range> cols = stackalloc Range[7];
        int n = l.Split(cols, ',');
        if (n != 6) Fail($"expected 6 comma-separated columns ({Header}), found {n}");
        var time = l[cols[0]].Trim();
        var device = l[cols[1]].Trim().ToString();
        var pasid = l[cols[2]].Trim();
        var iova = l[cols[3]].Trim();
        var bytes = l[cols[4]].Trim();
        var op = l[cols[5]].Trim();

        long? t = null;
        if (time.Length > 0)
        {
            if (!decimal.TryParse(time, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal tv) || tv > long.MaxValue / 1000
                || decimal.Round(tv * 1000) != tv * 1000)
                Fail($"time_ns '{time}' is not a non-negative number of ns (at most 3 decimals)");
            t = (long)(tv * 1000);
        }
        if (device.Length == 0) Fail("device is empty");
        if (_devices is not null && !_devices.Contains(device)) Fail($"unknown device '{device}' (devices: {string.Join(", ", _devices.Order(StringComparer.Ordinal))})");
        uint? p = null;
        if (pasid.Length > 0)
        {
            if (!uint.TryParse(pasid, NumberStyles.None, CultureInfo.InvariantCulture, out uint pv) || pv >= 1u << 20) Fail($"pasid '{pasid}' is not a decimal PASID below 2^20");
            p = pv;
        }
        ulong a;
        bool ok = iova.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(iova[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out a)
            : ulong.TryParse(iova, NumberStyles.None, CultureInfo.InvariantCulture, out a);
        if (!ok) Fail($"iova '{iova}' is not a hex (0x...) or decimal address");
        if (!int.TryParse(bytes, NumberStyles.None, CultureInfo.InvariantCulture, out int b) || b < 1 || b > 1 << 20) Fail($"bytes '{bytes}' must be an integer in 1..1048576");
        if (a + (ulong)b - 1 < a) Fail("iova + bytes overflows the address space");
        bool write;
        if (op.Equals("W", StringComparison.Ordinal)) write = true;
        else if (op.Equals("R", StringComparison.Ordinal)) write = false;
        else { Fail($"op '{op}' must be R or W"); write = false; }
        if (t is long tt)
        {
            if (_lastTime.TryGetValue(device, out long last) && tt < last) Fail($"time_ns {tt / 1000.0} goes backwards for device '{device}' (previous {last / 1000.0})");
            _lastTime[device] = tt;
        }
        return new TraceRecord(t, device, p, a, b, write, _line);
    }

    private void Fail(string message) => throw new TraceFormatException(_file, _line, message);

    /// <summary>Reads a whole trace once to validate it (constant memory); returns the line count.</summary>
    public static long Validate(string path, IReadOnlySet<string>? devices)
    {
        using var r = Open(path, devices);
        long n = 0;
        while (r.Next() is not null) n++;
        return n;
    }

    public void Dispose() => _reader.Dispose();
}
