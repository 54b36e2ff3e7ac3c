using System.Text;

namespace IommuSim.Workloads.Trace;

/// <summary>
/// Streams a DMA trace (CSV: <c>time_ns,device,pasid,iova,bytes,op</c>) one line at a time, so a
/// trace of any length replays in constant memory. Malformed lines raise
/// <see cref="TraceFormatException"/> with the file and line number.
/// </summary>
/// <remarks>
/// Lines are parsed as UTF-8 bytes straight out of a reused buffer and device names are matched to
/// the names already seen, so a record costs no allocation: the earlier line-per-string reader spent
/// most of a replay's time allocating and collecting strings (docs/trace.md, "Replay speed").
/// </remarks>
public sealed class TraceReader : IDisposable
{
    public const string Header = "time_ns,device,pasid,iova,bytes,op";

    /// <summary>A line longer than this is an error (the buffer would otherwise grow without bound).</summary>
    public const int MaxLineBytes = 1 << 20;

    private readonly LineSource _src;
    private readonly string _file;
    private readonly string[]? _known;
    // Device names seen so far (UTF-8 bytes and the string handed out), with their last time_ns.
    private readonly List<byte[]> _nameBytes = [];
    private readonly List<string> _names = [];
    private readonly List<long> _lastTime = [];

    public TraceReader(Stream stream, string fileName, IReadOnlySet<string>? knownDevices = null)
    {
        _src = new LineSource(stream, fileName);
        _file = fileName;
        if (knownDevices is not null)
        {
            _known = knownDevices.Order(StringComparer.Ordinal).ToArray();
            foreach (var d in _known) Intern(d);
        }
        ReadHeader();
    }

    public TraceReader(TextReader reader, string fileName, IReadOnlySet<string>? knownDevices = null)
        : this(new MemoryStream(Encoding.UTF8.GetBytes(reader.ReadToEnd())), fileName, knownDevices) { }

    public static TraceReader Open(string path, IReadOnlySet<string>? knownDevices = null)
        => new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan), path, knownDevices);

    private int Intern(string name)
    {
        _nameBytes.Add(Encoding.UTF8.GetBytes(name));
        _names.Add(name);
        _lastTime.Add(long.MinValue);
        return _names.Count - 1;
    }

    private void ReadHeader()
    {
        while (_src.NextLine(out var raw))
        {
            var l = TrimAscii(raw);
            if (l.Length == 0 || l[0] == (byte)'#') continue;
            string text = Encoding.UTF8.GetString(l);
            if (!string.Equals(text.Replace(" ", "", StringComparison.Ordinal), Header, StringComparison.OrdinalIgnoreCase))
                throw new TraceFormatException(_file, _src.Line, $"the header line must be '{Header}'");
            return;
        }
        throw new TraceFormatException(_file, Math.Max(1, _src.Line), $"empty trace: the header line '{Header}' is required");
    }

    /// <summary>The next record, or null at the end of the file.</summary>
    public TraceRecord? Next() => TryNext(out var r) ? r : null;

    /// <summary>The next record; false at the end of the file.</summary>
    public bool TryNext(out TraceRecord record)
    {
        // Canonical lines are parsed straight out of the read buffer, in one pass that also finds the line's end.
        if (TryParseFast(_src.Pending, _src.Line + 1, inBuffer: true, out record, out int used))
        {
            _src.Consume(used);
            return true;
        }
        while (_src.NextLine(out var raw))
        {
            var l = TrimAscii(raw);
            if (l.Length == 0 || l[0] == (byte)'#') continue;
            if (!TryParseFast(l, _src.Line, inBuffer: false, out record, out _)) record = Parse(l);
            return true;
        }
        record = default;
        return false;
    }

    /// <summary>
    /// One pass over a well-formed line without spaces (what --record-trace writes); anything unusual
    /// (spaces, a bad digit, a new device, time going backwards) returns false and the line goes
    /// through <see cref="Parse"/>, which gives the same record or the error message.
    /// </summary>
    /// <remarks>On a line without its terminator, or on the read buffer: then the record must end in
    /// '\n' (<paramref name="used"/> counts it), and a buffer that ends first is left to the general path.</remarks>
    private bool TryParseFast(ReadOnlySpan<byte> l, int line, bool inBuffer, out TraceRecord rec, out int used)
    {
        rec = default;
        used = 0;
        int i = 0, n = l.Length;
        // time_ns: digits, optional '.', up to 3 decimals
        long t = -1;
        if (i < n && l[i] != (byte)',')
        {
            ulong w = 0;
            int start = i;
            while (i < n && (uint)(l[i] - '0') <= 9) { w = w * 10 + (uint)(l[i] - '0'); i++; }
            if (i == start || i - start > 15) return false;
            long f = 0;
            int decimals = 0;
            if (i < n && l[i] == (byte)'.')
            {
                i++;
                while (i < n && (uint)(l[i] - '0') <= 9 && decimals < 3) { f = f * 10 + (l[i] - '0'); i++; decimals++; }
            }
            for (; decimals < 3; decimals++) f *= 10;
            t = (long)w * 1000 + f;
        }
        if (i >= n || l[i++] != (byte)',') return false;
        // device: one of the names seen so far
        int d0 = i;
        while (i < n && l[i] != (byte)',') i++;
        if (i >= n) return false;
        var device = l[d0..i++];
        int di = -1;
        for (int k = 0; k < _nameBytes.Count; k++)
            if (device.SequenceEqual(_nameBytes[k])) { di = k; break; }
        if (di < 0) return false;
        // pasid: empty or decimal
        uint? pasid = null;
        if (i < n && l[i] != (byte)',')
        {
            uint p = 0;
            int start = i;
            while (i < n && (uint)(l[i] - '0') <= 9) { p = p * 10 + (uint)(l[i] - '0'); i++; }
            if (i == start || i - start > 7 || p >= 1u << 20) return false;
            pasid = p;
        }
        if (i >= n || l[i++] != (byte)',') return false;
        // iova: 0x + 1..16 hex digits
        if (i + 2 >= n || l[i] != (byte)'0' || (l[i + 1] | 0x20) != (byte)'x') return false;
        i += 2;
        ulong a = 0;
        int h0 = i;
        var table = HexDigits;
        while (i < n && table[l[i]] <= 15) { a = a << 4 | table[l[i]]; i++; }
        if (i == h0 || i - h0 > 16) return false;
        if (i >= n || l[i++] != (byte)',') return false;
        // bytes: 1..1048576
        int b = 0, b0 = i;
        while (i < n && (uint)(l[i] - '0') <= 9 && i - b0 < 8) { b = b * 10 + (l[i] - '0'); i++; }
        if (i == b0 || b < 1 || b > 1 << 20 || a + (ulong)b - 1 < a) return false;
        if (i + 1 >= n || l[i] != (byte)',') return false;
        byte op = l[i + 1];
        if (op is not ((byte)'R' or (byte)'W')) return false;
        // The record ends the line: either the span ends here (a line) or a '\n' follows (the buffer).
        if (!inBuffer && i + 2 == n) used = n;
        else if (inBuffer && i + 2 < n && l[i + 2] == (byte)'\n') used = i + 3;
        else return false;
        long? timePs = null;
        if (t >= 0)
        {
            if (t < _lastTime[di]) return false;
            _lastTime[di] = t;
            timePs = t;
        }
        rec = new TraceRecord(timePs, _names[di], pasid, a, b, op == (byte)'W', line);
        return true;
    }

    private TraceRecord Parse(ReadOnlySpan<byte> l)
    {
        Span<Range> cols = stackalloc Range[7];
        int n = SplitColumns(l, cols);
        if (n != 6) Fail($"expected 6 comma-separated columns ({Header}), found {n}");
        var time = TrimAscii(l[cols[0]]);
        var device = TrimAscii(l[cols[1]]);
        var pasid = TrimAscii(l[cols[2]]);
        var iova = TrimAscii(l[cols[3]]);
        var bytes = TrimAscii(l[cols[4]]);
        var op = TrimAscii(l[cols[5]]);

        long t = -1;
        if (time.Length > 0 && !TryParseTimePs(time, out t))
            Fail($"time_ns '{Text(time)}' is not a non-negative number of ns (at most 3 decimals)");
        if (device.Length == 0) Fail("device is empty");
        int di = DeviceIndex(device);
        uint? p = null;
        if (pasid.Length > 0)
        {
            if (!TryParseDecimal(pasid, out ulong pv) || pv >= 1u << 20) Fail($"pasid '{Text(pasid)}' is not a decimal PASID below 2^20");
            p = (uint)pv;
        }
        bool ok = iova.Length > 2 && iova[0] == (byte)'0' && (iova[1] | 0x20) == (byte)'x'
            ? TryParseHex(iova[2..], out ulong a)
            : TryParseDecimal(iova, out a);
        if (!ok) Fail($"iova '{Text(iova)}' is not a hex (0x...) or decimal address");
        if (!TryParseDecimal(bytes, out ulong bv) || bv < 1 || bv > 1 << 20) Fail($"bytes '{Text(bytes)}' must be an integer in 1..1048576");
        int b = (int)bv;
        if (a + (ulong)b - 1 < a) Fail("iova + bytes overflows the address space");
        bool write = false;
        if (op.Length == 1 && op[0] == (byte)'W') write = true;
        else if (op.Length != 1 || op[0] != (byte)'R') Fail($"op '{Text(op)}' must be R or W");
        long? timePs = null;
        if (t >= 0)
        {
            long last = _lastTime[di];
            if (t < last) Fail($"time_ns {t / 1000.0} goes backwards for device '{_names[di]}' (previous {last / 1000.0})");
            _lastTime[di] = t;
            timePs = t;
        }
        return new TraceRecord(timePs, _names[di], p, a, b, write, _src.Line);
    }

    /// <summary>Splits at commas into at most cols.Length ranges (the last takes the rest); returns the count.</summary>
    private static int SplitColumns(ReadOnlySpan<byte> l, Span<Range> cols)
    {
        // One pass over a short line beats a vectorised search per column.
        int n = 0, start = 0, last = cols.Length - 1;
        for (int i = 0; i < l.Length && n < last; i++)
        {
            if (l[i] != (byte)',') continue;
            cols[n++] = new Range(start, i);
            start = i + 1;
        }
        cols[n++] = new Range(start, l.Length);
        return n;
    }

    private int DeviceIndex(ReadOnlySpan<byte> device)
    {
        for (int i = 0; i < _nameBytes.Count; i++)
            if (device.SequenceEqual(_nameBytes[i])) return i;
        if (_known is not null) Fail($"unknown device '{Text(device)}' (devices: {string.Join(", ", _known)})");
        return Intern(Text(device));
    }

    private static string Text(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);

    private void Fail(string message) => throw new TraceFormatException(_file, _src.Line, message);

    private static ReadOnlySpan<byte> TrimAscii(ReadOnlySpan<byte> s)
    {
        if (s.Length == 0 || (s[0] > (byte)' ' && s[^1] > (byte)' ')) return s; // the usual case
        int a = 0, b = s.Length;
        while (a < b && IsSpace(s[a])) a++;
        while (b > a && IsSpace(s[b - 1])) b--;
        return s[a..b];
    }

    private static bool IsSpace(byte c) => c is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or 0x0B or 0x0C;

    /// <summary>Non-negative decimal ns with up to three significant decimals (more only if zeros), as ps.</summary>
    internal static bool TryParseTimePs(ReadOnlySpan<byte> s, out long ps)
    {
        ps = 0;
        int dot = s.IndexOf((byte)'.');
        var whole = dot < 0 ? s : s[..dot];
        var frac = dot < 0 ? [] : s[(dot + 1)..];
        if (whole.Length + frac.Length == 0) return false;
        ulong w = 0;
        if (whole.Length > 0 && !TryParseDecimal(whole, out w)) return false;
        long f = 0;
        for (int i = 0; i < frac.Length; i++)
        {
            int d = frac[i] - '0';
            if ((uint)d > 9) return false;
            if (i < 3) f = f * 10 + d;
            else if (d != 0) return false; // below a picosecond
        }
        for (int i = frac.Length; i < 3; i++) f *= 10;
        const ulong maxWhole = long.MaxValue / 1000;
        if (w > maxWhole || (w == maxWhole && f > 0)) return false; // as the decimal reader did: at most long.MaxValue / 1000 ns
        ps = (long)w * 1000 + f;
        return ps >= 0;
    }

    internal static bool TryParseDecimal(ReadOnlySpan<byte> s, out ulong v)
    {
        v = 0;
        if (s.Length == 0) return false;
        foreach (byte c in s)
        {
            uint d = (uint)(c - '0');
            if (d > 9) return false;
            if (v > (ulong.MaxValue - d) / 10) return false;
            v = v * 10 + d;
        }
        return true;
    }

    internal static bool TryParseHex(ReadOnlySpan<byte> s, out ulong v)
    {
        v = 0;
        if (s.Length == 0) return false;
        var table = HexDigits;
        foreach (byte c in s)
        {
            int d = table[c];
            if (d > 15 || v >> 60 != 0) return false;
            v = v << 4 | (uint)d;
        }
        return true;
    }

    /// <summary>Value of each byte as a hex digit, 0xFF when it is not one.</summary>
    private static ReadOnlySpan<byte> HexDigits =>
    [
        255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255, 255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,
        255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255, 0,1,2,3,4,5,6,7,8,9,255,255,255,255,255,255,
        255,10,11,12,13,14,15,255,255,255,255,255,255,255,255,255, 255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,
        255,10,11,12,13,14,15,255,255,255,255,255,255,255,255,255, 255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,
        255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255, 255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,
        255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255, 255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,
        255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255, 255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,
        255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255, 255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255,
    ];

    public void Dispose() => _src.Dispose();
}
