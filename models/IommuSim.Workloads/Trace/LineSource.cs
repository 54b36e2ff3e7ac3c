namespace IommuSim.Workloads.Trace;

/// <summary>
/// Splits a byte stream into lines (ending in LF, CRLF or CR) inside one reused buffer, so reading
/// a trace allocates nothing per line and holds at most one line (≤ <see cref="TraceReader.MaxLineBytes"/>)
/// plus a 64 KiB read-ahead. A UTF-8 byte-order mark at the start is skipped.
/// </summary>
internal sealed class LineSource(Stream stream, string fileName) : IDisposable
{
    private byte[] _buf = new byte[1 << 16];
    private int _start, _end;
    private bool _eof;
    private bool _first = true;

    /// <summary>1-based number of the line last returned.</summary>
    public int Line { get; private set; }

    /// <summary>The next line without its terminator; the span is valid until the next call.</summary>
    public bool NextLine(out ReadOnlySpan<byte> line)
    {
        while (true)
        {
            var avail = _buf.AsSpan(_start, _end - _start);
            int i = avail.IndexOfAny((byte)'\n', (byte)'\r');
            // A CR at the end of the buffer may be the first half of a CRLF: read on before deciding.
            if (i >= 0 && !(avail[i] == (byte)'\r' && i == avail.Length - 1 && !_eof))
            {
                line = avail[..i];
                int skip = i + 1;
                if (avail[i] == (byte)'\r' && i + 1 < avail.Length && avail[i + 1] == (byte)'\n') skip++;
                _start += skip;
                Line++;
                return true;
            }
            if (_eof)
            {
                if (avail.Length == 0) { line = default; return false; }
                line = avail;
                _start = _end;
                Line++;
                return true;
            }
            Fill();
        }
    }

    /// <summary>The unread bytes in the buffer (may end inside a line; empty before the first read).</summary>
    public ReadOnlySpan<byte> Pending => _buf.AsSpan(_start, _end - _start);

    /// <summary>Consumes one whole line of <paramref name="count"/> bytes, its terminator included, read from <see cref="Pending"/>.</summary>
    public void Consume(int count)
    {
        _start += count;
        Line++;
    }

    private void Fill()
    {
        int have = _end - _start;
        if (_start > 0)
        {
            Buffer.BlockCopy(_buf, _start, _buf, 0, have);
            _start = 0;
            _end = have;
        }
        if (_end == _buf.Length)
        {
            if (_buf.Length >= TraceReader.MaxLineBytes + 2)
                throw new TraceFormatException(fileName, Line + 1, $"line longer than {TraceReader.MaxLineBytes} bytes");
            Array.Resize(ref _buf, _buf.Length * 2);
        }
        int n = stream.Read(_buf, _end, _buf.Length - _end);
        if (n == 0) _eof = true;
        _end += n;
        if (_first && _end >= 3 && _buf[0] == 0xEF && _buf[1] == 0xBB && _buf[2] == 0xBF) { _start = 3; _first = false; }
        else if (_first && (_end >= 3 || _eof)) _first = false;
    }

    public void Dispose() => stream.Dispose();
}
