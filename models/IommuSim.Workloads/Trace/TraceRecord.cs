namespace IommuSim.Workloads.Trace;

/// <summary>One DMA trace line (see spec/trace.md).</summary>
/// <remarks>time_ns may carry up to three decimals (ps resolution), which <c>--record-trace</c> uses so replays are exact.</remarks>
public readonly record struct TraceRecord(long? TimePs, string Device, uint? Pasid, ulong Iova, int Bytes, bool IsWrite, int Line);

/// <summary>A malformed trace line: <c>FILE:LINE: what is wrong</c>.</summary>
public sealed class TraceFormatException(string file, int line, string message)
    : Exception($"{file}:{line}: {message}")
{
    public string File { get; } = file;
    public int LineNumber { get; } = line;
}
