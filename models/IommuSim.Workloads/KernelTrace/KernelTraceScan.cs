using IommuSim.Workloads.Trace;

namespace IommuSim.Workloads.KernelTrace;

/// <summary>
/// Reads a kernel trace once before the run (constant memory apart from the live mappings) and
/// refuses what the replay could not do faithfully, naming the line: a map over a range that is
/// still mapped (iommu_map would have failed, so no map event exists for it: the trace mixes
/// several domains, or lost events), IOVAs beyond the design's address width, or IOVAs inside
/// ranges the configuration already uses.
/// </summary>
public static class KernelTraceScan
{
    /// <param name="reserved">IOVA ranges the trace must not map (the device's premapped dmaRegions, the DMA API's own window), with a name for the message.</param>
    /// <param name="addressBits">Width of the table the replay maps into (0: no limit, for designs without translation).</param>
    public static KernelTraceCounts Validate(string path, IReadOnlyList<(ulong Start, ulong End, string Name)> reserved, int addressBits)
    {
        using var r = FtraceReader.Open(path);
        return Validate(r, reserved, addressBits);
    }

    public static KernelTraceCounts Validate(FtraceReader r, IReadOnlyList<(ulong Start, ulong End, string Name)> reserved, int addressBits)
    {
        var live = new LiveMappings();
        var hits = new List<LiveMappings.Entry>();
        ulong limit = addressBits is > 0 and < 64 ? 1UL << addressBits : ulong.MaxValue;
        while (r.Next(out var e))
        {
            if (e.Kind is not (FtraceEventKind.Map or FtraceEventKind.Unmap)) continue;
            ulong a = e.Iova, b = e.Iova + (e.Kind == FtraceEventKind.Unmap && e.UnmappedSize > 0 ? e.UnmappedSize : e.Size);
            if (b > limit)
                throw new TraceFormatException(r.FileName, e.Line, $"iova range 0x{a:x}-0x{b:x} exceeds the {addressBits}-bit address width of the design's table");
            if (e.Kind == FtraceEventKind.Unmap)
            {
                live.Remove(a, b, static (_, _) => { });
                continue;
            }
            foreach (var (s, end, name) in reserved)
                if (a < end && s < b)
                    throw new TraceFormatException(r.FileName, e.Line, $"map of iova range 0x{a:x}-0x{b:x} overlaps {name} [0x{s:x}, 0x{end:x})");
            live.Intersecting(a, b, hits);
            if (hits.Count > 0)
                throw new TraceFormatException(r.FileName, e.Line,
                    $"map of iova range 0x{a:x}-0x{b:x} overlaps a range still mapped since line {hits[^1].Buffer}: the trace mixes several domains (filter it to one device) or lost events");
            live.Add(a, b, e.Line); // the entry's tag is the line that mapped it, for messages

        }
        return r.Counts;
    }
}
