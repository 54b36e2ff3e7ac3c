namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The DMA API's IOVA allocator for one domain: page-granular, with per-size free lists (like the
/// kernel's IOVA rcache "magazines") in front of a bump allocator over the domain's window.
/// Freed ranges are reused most-recently-freed first, as the rcache does.
/// </summary>
public sealed class IovaAllocator(ulong baseIova, ulong bytes)
{
    private readonly Dictionary<ulong, Stack<ulong>> _free = [];
    private readonly ulong _end = baseIova + bytes;
    private readonly ulong _windowBytes = bytes;
    private ulong _next = baseIova;

    public long Allocated { get; private set; }

    public ulong Allocate(ulong length)
    {
        ulong pages = (length + 0xFFF) >> 12;
        Allocated++;
        if (_free.TryGetValue(pages, out var s) && s.Count > 0) return s.Pop();
        ulong iova = _next;
        if (iova + (pages << 12) > _end) throw new InvalidOperationException($"DMA IOVA window of 0x{_windowBytes:x} bytes exhausted");
        _next += pages << 12;
        return iova;
    }

    public void Free(ulong iova, ulong length)
    {
        ulong pages = (length + 0xFFF) >> 12;
        if (!_free.TryGetValue(pages, out var s)) _free[pages] = s = new Stack<ulong>();
        s.Push(iova);
    }
}
