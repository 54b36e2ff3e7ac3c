using System.Text.Json;

namespace IommuSim.Cli.Timeline;

/// <summary>
/// Streams Chrome/Perfetto trace-event JSON (the "JSON Object Format": <c>{"traceEvents":[...]}</c>)
/// with <see cref="Utf8JsonWriter"/>. Times are simulated picoseconds, written as microseconds with
/// six decimals (exact). Names and categories are pre-encoded; numbers and hex addresses are
/// formatted without allocating. Written to a temporary file that <see cref="Complete"/> renames into
/// place, so an interrupted run leaves no half-written trace.
/// </summary>
internal sealed class TraceEventWriter : IDisposable
{
    private static readonly JsonEncodedText PName = JsonEncodedText.Encode("name"), PCat = JsonEncodedText.Encode("cat"),
        PPh = JsonEncodedText.Encode("ph"), PTs = JsonEncodedText.Encode("ts"), PDur = JsonEncodedText.Encode("dur"),
        PPid = JsonEncodedText.Encode("pid"), PTid = JsonEncodedText.Encode("tid"), PArgs = JsonEncodedText.Encode("args"),
        PId = JsonEncodedText.Encode("id"), PBp = JsonEncodedText.Encode("bp"), PS = JsonEncodedText.Encode("s"),
        X = JsonEncodedText.Encode("X"), I = JsonEncodedText.Encode("i"), M = JsonEncodedText.Encode("M"),
        E = JsonEncodedText.Encode("e"), T = JsonEncodedText.Encode("t"), P = JsonEncodedText.Encode("p"),
        FlowStart = JsonEncodedText.Encode("s"), FlowStep = JsonEncodedText.Encode("t"), FlowEnd = JsonEncodedText.Encode("f"),
        ProcessName = JsonEncodedText.Encode("process_name"), ThreadName = JsonEncodedText.Encode("thread_name"),
        ProcessSort = JsonEncodedText.Encode("process_sort_index"), ThreadSort = JsonEncodedText.Encode("thread_sort_index"),
        SortIndex = JsonEncodedText.Encode("sort_index");

    private readonly string _path;
    private readonly string _tmp;
    private readonly FileStream _file;
    private readonly Utf8JsonWriter _w;
    private bool _done;

    public TraceEventWriter(string path)
    {
        _path = path;
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        _tmp = path + $".tmp-{Environment.ProcessId}";
        _file = new FileStream(_tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        _w = new Utf8JsonWriter(_file, new JsonWriterOptions { SkipValidation = false });
        _w.WriteStartObject();
        _w.WriteString("displayTimeUnit", "ns");
        _w.WriteStartArray("traceEvents");
    }

    /// <summary>Events written so far (metadata included).</summary>
    public long Events { get; private set; }

    public void NameProcess(int pid, string name, int sortIndex)
    {
        Meta(pid, 0, ProcessName, name);
        MetaSort(pid, 0, ProcessSort, sortIndex);
    }

    public void NameThread(int pid, int tid, string name, int sortIndex)
    {
        Meta(pid, tid, ThreadName, name);
        MetaSort(pid, tid, ThreadSort, sortIndex);
    }

    private void Meta(int pid, int tid, JsonEncodedText kind, string name)
    {
        Head(M, kind, pid, tid);
        _w.WriteStartObject(PArgs);
        _w.WriteString(PName, name);
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    private void MetaSort(int pid, int tid, JsonEncodedText kind, int index)
    {
        Head(M, kind, pid, tid);
        _w.WriteStartObject(PArgs);
        _w.WriteNumber(SortIndex, index);
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    /// <summary>Starts a complete ("X") slice; add arguments with <see cref="Arg(JsonEncodedText, long)"/> etc., then <see cref="EndArgs"/>.</summary>
    public void BeginSlice(int pid, int tid, JsonEncodedText name, JsonEncodedText cat, long startPs, long endPs)
    {
        Head(X, name, pid, tid);
        _w.WriteString(PCat, cat);
        Time(PTs, startPs);
        Time(PDur, endPs - startPs);
        _w.WriteStartObject(PArgs);
    }

    public void Slice(int pid, int tid, JsonEncodedText name, JsonEncodedText cat, long startPs, long endPs)
    {
        BeginSlice(pid, tid, name, cat, startPs, endPs);
        EndArgs();
    }

    /// <summary>Starts an instant ("i") event, thread-scoped or process-scoped; then arguments and <see cref="EndArgs"/>.</summary>
    public void BeginInstant(int pid, int tid, JsonEncodedText name, JsonEncodedText cat, long atPs, bool processScope)
    {
        Head(I, name, pid, tid);
        _w.WriteString(PCat, cat);
        _w.WriteString(PS, processScope ? P : T);
        Time(PTs, atPs);
        _w.WriteStartObject(PArgs);
    }

    public void Arg(JsonEncodedText key, long value) => _w.WriteNumber(key, value);

    public void Arg(JsonEncodedText key, JsonEncodedText value) => _w.WriteString(key, value);

    public void Arg(JsonEncodedText key, string value) => _w.WriteString(key, value);

    /// <summary>A duration argument in ns (from ps, exact).</summary>
    public void ArgNs(JsonEncodedText key, long ps) => _w.WriteNumber(key, ps / 1000m);

    public void ArgHex(JsonEncodedText key, ulong value)
    {
        Span<char> buf = stackalloc char[18];
        buf[0] = '0';
        buf[1] = 'x';
        value.TryFormat(buf[2..], out int n, "x");
        _w.WriteString(key, buf[..(n + 2)]);
    }

    public void EndArgs()
    {
        _w.WriteEndObject();
        _w.WriteEndObject();
        if (_w.BytesPending > 1 << 16) _w.Flush();
    }

    /// <summary>A flow event (v1: "s" start, "t" step, "f" end) bound to the slice enclosing <paramref name="atPs"/> on its thread.</summary>
    public void Flow(char phase, int pid, int tid, JsonEncodedText name, JsonEncodedText cat, long id, long atPs)
    {
        Head(phase == 's' ? FlowStart : phase == 't' ? FlowStep : FlowEnd, name, pid, tid);
        _w.WriteString(PCat, cat);
        _w.WriteNumber(PId, id);
        Time(PTs, atPs);
        if (phase == 'f') _w.WriteString(PBp, E);
        _w.WriteEndObject();
    }

    private void Head(JsonEncodedText ph, JsonEncodedText name, int pid, int tid)
    {
        Events++;
        _w.WriteStartObject();
        _w.WriteString(PPh, ph);
        _w.WriteString(PName, name);
        _w.WriteNumber(PPid, pid);
        _w.WriteNumber(PTid, tid);
    }

    /// <summary>ps → µs, exact: a decimal with at most six fraction digits.</summary>
    private void Time(JsonEncodedText key, long ps) => _w.WriteNumber(key, ps / 1_000_000m);

    /// <summary>Closes the JSON (with <paramref name="otherData"/> as metadata) and moves the file into place.</summary>
    public void Complete(IReadOnlyList<(string Key, string Value)> otherData)
    {
        _w.WriteEndArray();
        _w.WriteStartObject("otherData");
        foreach (var (k, v) in otherData) _w.WriteString(k, v);
        _w.WriteEndObject();
        _w.WriteEndObject();
        _w.Flush();
        _w.Dispose();
        _file.Dispose();
        File.Move(_tmp, _path, overwrite: true);
        _done = true;
    }

    public void Dispose()
    {
        if (_done) return;
        _w.Dispose();
        _file.Dispose();
        if (File.Exists(_tmp)) File.Delete(_tmp);
    }
}
