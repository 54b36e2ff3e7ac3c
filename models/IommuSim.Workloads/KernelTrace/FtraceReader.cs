using System.Text;
using IommuSim.Workloads.Trace;

namespace IommuSim.Workloads.KernelTrace;

/// <summary>
/// Streams ftrace text (the tracefs <c>trace</c> file, or <c>trace-cmd report</c>) one line at a
/// time. A line is <c>TASK-PID [CPU] [FLAGS] SECONDS.FRACTION: EVENT: PAYLOAD</c>; the payloads of
/// <c>map</c>, <c>unmap</c> and <c>io_page_fault</c> are those of include/trace/events/iommu.h, that of
/// <c>qi_submit</c> is drivers/iommu/intel/trace.h's. Other events are counted by name. A line that
/// fits none of this raises <see cref="TraceFormatException"/> naming the file and line.
/// </summary>
public sealed class FtraceReader : IDisposable
{
    /// <summary>Mappings are passed to the DMA API as an int byte count; larger ones are refused.</summary>
    public const ulong MaxMappingBytes = 1UL << 30;

    private readonly LineSource _src;
    private readonly string _file;
    private readonly Dictionary<string, long>.AlternateLookup<ReadOnlySpan<char>> _unknown;

    public FtraceReader(Stream stream, string fileName)
    {
        _src = new LineSource(stream, fileName);
        _file = fileName;
        _unknown = Counts.Unknown.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public static FtraceReader Open(string path)
        => new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan), path);

    public string FileName => _file;

    /// <summary>Everything read so far, counted.</summary>
    public KernelTraceCounts Counts { get; } = new();

    /// <summary>The next map, unmap, qi_submit or io_page_fault event; false at the end of the file.</summary>
    public bool Next(out FtraceEvent e)
    {
        e = default;
        while (_src.NextLine(out var raw))
        {
            Counts.Lines++;
            var l = Trim(raw);
            if (l.Length == 0 || l[0] == (byte)'#' || IsHeader(l)) continue;
            if (TryLost(l)) continue;
            Parse(l, ref e);
            if (Counts.LastTimePs >= 0 && e.TimePs < Counts.LastTimePs)
                Fail($"timestamp {e.TimePs / 1e12:0.000000###} s goes backwards (previous {Counts.LastTimePs / 1e12:0.000000###} s)");
            Counts.Add(e);
            if (e.Kind == FtraceEventKind.Other) continue;
            return true;
        }
        return false;
    }

    /// <summary>trace-cmd report's preamble: <c>cpus=8</c>, <c>version = 6</c>, <c>CPU 3 is empty</c>.</summary>
    private static bool IsHeader(ReadOnlySpan<byte> l)
        => l.StartsWith("cpus="u8) || l.StartsWith("version ="u8) || (l.StartsWith("CPU "u8) && l.EndsWith(" is empty"u8));

    /// <summary><c>CPU:3 [LOST 1234 EVENTS]</c>: the ring buffer overflowed; the count is reported.</summary>
    private bool TryLost(ReadOnlySpan<byte> l)
    {
        if (!l.StartsWith("CPU:"u8)) return false;
        int i = l.IndexOf("[LOST "u8);
        if (i < 0) Fail("a 'CPU:' line must be a lost-events marker 'CPU:N [LOST M EVENTS]'");
        var rest = l[(i + 6)..];
        int sp = rest.IndexOf((byte)' ');
        ulong n = 0;
        if (sp < 0 || !TraceReader.TryParseDecimal(rest[..sp], out n)) Fail("malformed lost-events marker (expected 'CPU:N [LOST M EVENTS]')");
        Counts.LostEvents += (long)n;
        return true;
    }

    private void Parse(ReadOnlySpan<byte> l, ref FtraceEvent e)
    {
        e.Line = _src.Line;
        // [CPU]: the first '[' followed by digits and ']' (task names may contain '-', spaces, '/').
        int cpuStart = -1, cpuEnd = -1;
        for (int i = l.IndexOf((byte)'['); i >= 0 && i < l.Length; i = NextBracket(l, i + 1))
        {
            int j = i + 1;
            while (j < l.Length && (uint)(l[j] - '0') <= 9) j++;
            if (j > i + 1 && j < l.Length && l[j] == (byte)']') { cpuStart = i + 1; cpuEnd = j; break; }
        }
        if (cpuStart < 0) Fail("not an ftrace event line (expected 'TASK-PID [CPU] TIMESTAMP: EVENT: ...')");
        TraceReader.TryParseDecimal(l[cpuStart..cpuEnd], out ulong cpu);
        e.Cpu = (int)Math.Min(cpu, int.MaxValue);
        var rest = TrimStart(l[(cpuEnd + 1)..]);
        var tok = Token(rest);
        if (!(tok.Length > 1 && tok[^1] == (byte)':' && (uint)(tok[0] - '0') <= 9))
        {
            rest = TrimStart(rest[tok.Length..]); // irq/preempt flags (d.h1., .N..., ...)
            tok = Token(rest);
        }
        if (tok.Length < 2 || tok[^1] != (byte)':') Fail("missing timestamp (expected 'SECONDS.FRACTION:' after the CPU and flags)");
        e.TimePs = ParseTimestamp(tok[..^1]);
        rest = TrimStart(rest[tok.Length..]);
        int colon = rest.IndexOf((byte)':');
        if (colon <= 0) Fail("missing event name (expected 'EVENT: ...' after the timestamp)");
        var name = rest[..colon];
        foreach (byte c in name)
            if (!(char.IsAsciiLetterOrDigit((char)c) || c == (byte)'_')) Fail($"'{Text(name)}' is not an event name");
        var payload = Trim(rest[(colon + 1)..]);
        if (name.SequenceEqual("map"u8)) ParseMap(payload, ref e);
        else if (name.SequenceEqual("unmap"u8)) ParseUnmap(payload, ref e);
        else if (name.SequenceEqual("qi_submit"u8)) ParseQi(payload, ref e);
        else if (name.SequenceEqual("io_page_fault"u8)) ParseFault(payload, ref e);
        else
        {
            e.Kind = FtraceEventKind.Other;
            Span<char> chars = stackalloc char[name.Length];
            for (int i = 0; i < name.Length; i++) chars[i] = (char)name[i];
            if (_unknown.TryGetValue(chars, out long n)) _unknown[chars] = n + 1;
            else _unknown[chars] = 1;
        }
    }

    private static int NextBracket(ReadOnlySpan<byte> l, int from)
    {
        int k = l[from..].IndexOf((byte)'[');
        return k < 0 ? -1 : from + k;
    }

    /// <summary>SECONDS.FRACTION (µs or ns decimals) to ps. Counter clocks (x86-tsc, counter) print no decimal point and are refused: their unit is unknown.</summary>
    private long ParseTimestamp(ReadOnlySpan<byte> t)
    {
        int dot = t.IndexOf((byte)'.');
        if (dot < 0) Fail($"timestamp '{Text(t)}' has no decimal point: a counter clock (x86-tsc, counter) has no known unit; record with the default 'local' clock, or 'global'/'mono'");
        var frac = t[(dot + 1)..];
        ulong s = 0, f = 0;
        if (!TraceReader.TryParseDecimal(t[..dot], out s) || frac.Length is 0 or > 9 || !TraceReader.TryParseDecimal(frac, out f) || s > 9_000_000)
            Fail($"timestamp '{Text(t)}' is not SECONDS.FRACTION (1 to 9 decimals, below 9e6 s)");
        for (int i = frac.Length; i < 12; i++) f *= 10;
        return (long)(s * 1_000_000_000_000UL + f);
    }

    private void RequireIommuPrefix(ReadOnlySpan<byte> p, string evt)
    {
        if (!p.StartsWith("IOMMU:"u8)) Fail($"{evt}: payload must start with 'IOMMU:' (include/trace/events/iommu.h)");
    }

    private void ParseMap(ReadOnlySpan<byte> p, ref FtraceEvent e)
    {
        RequireIommuPrefix(p, "map");
        e.Kind = FtraceEventKind.Map;
        var f = Fields(p[6..], "map");
        if (!f.HasIova || !f.HasPaddr || !f.HasSize) Fail("map: expected 'IOMMU: iova=0x... - 0x... paddr=0x... size=N'");
        e.Iova = f.Iova; e.Paddr = f.Paddr; e.Size = f.Size;
        CheckRange("map", e.Iova, e.Size, f);
        if ((e.Paddr & 0xFFF) != 0) Fail($"map: paddr=0x{e.Paddr:x} is not 4 KiB aligned");
    }

    private void ParseUnmap(ReadOnlySpan<byte> p, ref FtraceEvent e)
    {
        RequireIommuPrefix(p, "unmap");
        e.Kind = FtraceEventKind.Unmap;
        var f = Fields(p[6..], "unmap");
        if (!f.HasIova || !f.HasSize || !f.HasUnmapped) Fail("unmap: expected 'IOMMU: iova=0x... - 0x... size=N unmapped_size=N'");
        e.Iova = f.Iova; e.Size = f.Size; e.UnmappedSize = f.Unmapped;
        CheckRange("unmap", e.Iova, e.Size, f);
        if (e.UnmappedSize > e.Size || (e.UnmappedSize & 0xFFF) != 0) Fail($"unmap: unmapped_size={e.UnmappedSize} must be a multiple of 4096 no larger than size={e.Size}");
    }

    private void CheckRange(string evt, ulong iova, ulong size, in PayloadFields f)
    {
        if (size == 0) Fail($"{evt}: size=0");
        if (((iova | size) & 0xFFF) != 0) Fail($"{evt}: iova=0x{iova:x} size={size} is not 4 KiB aligned (the IOMMU's smallest page)");
        if (size > MaxMappingBytes) Fail($"{evt}: size={size} is larger than the {MaxMappingBytes >> 20} MiB a replayed call may cover");
        if (iova + size < iova) Fail($"{evt}: iova + size overflows");
        if (f.HasEnd && f.End != iova + size) Fail($"{evt}: the range end 0x{f.End:x} is not iova + size (0x{iova + size:x})");
    }

    private void ParseFault(ReadOnlySpan<byte> p, ref FtraceEvent e)
    {
        // "IOMMU:%s %s iova=0x%016llx flags=0x%04x" (driver, device)
        RequireIommuPrefix(p, "io_page_fault");
        e.Kind = FtraceEventKind.IoPageFault;
        var f = Fields(p[6..], "io_page_fault");
        if (!f.HasIova || !f.HasFlags) Fail("io_page_fault: expected 'IOMMU:DRIVER DEVICE iova=0x... flags=0x...'");
        e.Iova = f.Iova;
        e.FaultWrite = (f.Flags & 1) != 0; // IOMMU_FAULT_WRITE
    }

    private void ParseQi(ReadOnlySpan<byte> p, ref FtraceEvent e)
    {
        // "%s %s: 0x%llx 0x%llx 0x%llx 0x%llx" (type, IOMMU name, qw0..qw3)
        e.Kind = FtraceEventKind.QiSubmit;
        var type = Token(p);
        e.Qi = type switch
        {
            _ when type.SequenceEqual("cc_inv"u8) => QiType.CcInv,
            _ when type.SequenceEqual("iotlb_inv"u8) => QiType.IotlbInv,
            _ when type.SequenceEqual("dev_tlb_inv"u8) => QiType.DevTlbInv,
            _ when type.SequenceEqual("iec_inv"u8) => QiType.IecInv,
            _ when type.SequenceEqual("inv_wait"u8) => QiType.InvWait,
            _ when type.SequenceEqual("p_iotlb_inv"u8) => QiType.PIotlbInv,
            _ when type.SequenceEqual("pc_inv"u8) => QiType.PcInv,
            _ when type.SequenceEqual("p_dev_tlb_inv"u8) => QiType.PDevTlbInv,
            _ when type.SequenceEqual("page_grp_resp"u8) => QiType.PageGrpResp,
            _ => QiType.Other,
        };
        var rest = TrimStart(p[type.Length..]);
        var iommu = Token(rest);
        if (iommu.Length < 2 || iommu[^1] != (byte)':') Fail("qi_submit: expected 'TYPE IOMMU: 0xQW0 0xQW1 0xQW2 0xQW3'");
        rest = TrimStart(rest[iommu.Length..]);
        Span<ulong> qw = stackalloc ulong[4];
        for (int i = 0; i < 4; i++)
        {
            var t = Token(rest);
            if (!(t.Length > 2 && t[0] == (byte)'0' && t[1] == (byte)'x' && TraceReader.TryParseHex(t[2..], out qw[i])))
                Fail("qi_submit: expected four hex quadwords 0xQW0 0xQW1 0xQW2 0xQW3");
            rest = TrimStart(rest[t.Length..]);
        }
        if (rest.Length != 0) Fail("qi_submit: unexpected text after the four quadwords");
        e.Qw0 = qw[0];
        e.Qw1 = qw[1];
        // A symbolic name that disagrees with qw0's type field means the line was edited or mis-recorded.
        if (e.Qi != QiType.Other && TypeOf(qw[0]) != e.Qi) Fail($"qi_submit: '{Text(type)}' does not match qw0's type field ({qw[0] & 0xF})");
    }

    /// <summary>QI descriptor type in qw0 bits 3:0 (drivers/iommu/intel/iommu.h QI_*_TYPE).</summary>
    private static QiType TypeOf(ulong qw0) => (qw0 & 0xF) switch
    {
        0x1 => QiType.CcInv,
        0x2 => QiType.IotlbInv,
        0x3 => QiType.DevTlbInv,
        0x4 => QiType.IecInv,
        0x5 => QiType.InvWait,
        0x6 => QiType.PIotlbInv,
        0x7 => QiType.PcInv,
        0x8 => QiType.PDevTlbInv,
        0x9 => QiType.PageGrpResp,
        _ => QiType.Other,
    };

    private struct PayloadFields
    {
        public ulong Iova, Paddr, Size, Unmapped, End, Flags;
        public bool HasIova, HasPaddr, HasSize, HasUnmapped, HasEnd, HasFlags;
    }

    /// <summary>key=value tokens (iova, paddr, size, unmapped_size, flags, dev) and a '- 0xEND' range end; other tokens (driver and device names) are skipped.</summary>
    private PayloadFields Fields(ReadOnlySpan<byte> p, string evt)
    {
        var f = new PayloadFields();
        var rest = TrimStart(p);
        while (rest.Length > 0)
        {
            var t = Token(rest);
            rest = TrimStart(rest[t.Length..]);
            if (t.SequenceEqual("-"u8))
            {
                var end = Token(rest);
                rest = TrimStart(rest[end.Length..]);
                if (!Hex(end, out f.End)) Fail($"{evt}: range end '{Text(end)}' is not 0x-hex");
                f.HasEnd = true;
                continue;
            }
            int eq = t.IndexOf((byte)'=');
            if (eq < 0) continue;
            var key = t[..eq];
            var val = t[(eq + 1)..];
            bool ok = true;
            if (key.SequenceEqual("iova"u8)) { ok = Hex(val, out f.Iova); f.HasIova = true; }
            else if (key.SequenceEqual("paddr"u8)) { ok = Hex(val, out f.Paddr); f.HasPaddr = true; }
            else if (key.SequenceEqual("size"u8)) { ok = TraceReader.TryParseDecimal(val, out f.Size); f.HasSize = true; }
            else if (key.SequenceEqual("unmapped_size"u8)) { ok = TraceReader.TryParseDecimal(val, out f.Unmapped); f.HasUnmapped = true; }
            else if (key.SequenceEqual("flags"u8)) { ok = Hex(val, out f.Flags); f.HasFlags = true; }
            if (!ok) Fail($"{evt}: '{Text(t)}' has a malformed value");
        }
        return f;
    }

    private static bool Hex(ReadOnlySpan<byte> t, out ulong v)
    {
        v = 0;
        return t.Length > 2 && t[0] == (byte)'0' && (t[1] | 0x20) == (byte)'x' && TraceReader.TryParseHex(t[2..], out v);
    }

    private static ReadOnlySpan<byte> Token(ReadOnlySpan<byte> s)
    {
        int i = s.IndexOfAny((byte)' ', (byte)'\t');
        return i < 0 ? s : s[..i];
    }

    private static ReadOnlySpan<byte> TrimStart(ReadOnlySpan<byte> s)
    {
        int a = 0;
        while (a < s.Length && s[a] is (byte)' ' or (byte)'\t') a++;
        return s[a..];
    }

    private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> s)
    {
        s = TrimStart(s);
        int b = s.Length;
        while (b > 0 && s[b - 1] is (byte)' ' or (byte)'\t' or (byte)'\r') b--;
        return s[..b];
    }

    private static string Text(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);

    private void Fail(string message) => throw new TraceFormatException(_file, _src.Line, message);

    public void Dispose() => _src.Dispose();
}
