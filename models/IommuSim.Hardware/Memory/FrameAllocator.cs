namespace IommuSim.Hardware.Memory;

/// <summary>
/// Hands out host-physical frames from a range: single zeroed 4 KiB frames for tables (with a
/// free list, so freed page-table pages are reused lowest first) and aligned contiguous runs for
/// user memory. Deterministic: the same sequence of calls gives the same addresses.
/// </summary>
public sealed class FrameAllocator
{
    private readonly PhysicalMemory _memory;
    private readonly SortedSet<ulong> _free = [];
    private ulong _next;

    public FrameAllocator(PhysicalMemory memory, ulong baseAddress, ulong limit)
    {
        if ((baseAddress & (PhysicalMemory.FrameSize - 1)) != 0)
            throw new ArgumentException("allocator base must be 4 KiB aligned", nameof(baseAddress));
        _memory = memory;
        BaseAddress = baseAddress;
        Limit = limit;
        _next = baseAddress;
    }

    public ulong BaseAddress { get; }
    public ulong Limit { get; }

    /// <summary>Frames currently handed out as single frames (page-table pages).</summary>
    public long TableFramesInUse { get; private set; }

    /// <summary>A zeroed 4 KiB frame.</summary>
    public ulong AllocateFrame()
    {
        ulong pa;
        if (_free.Count > 0)
        {
            pa = _free.Min;
            _free.Remove(pa);
        }
        else
        {
            pa = Bump(PhysicalMemory.FrameSize, PhysicalMemory.FrameSize);
        }
        _memory.DiscardFrame(pa);
        TableFramesInUse++;
        return pa;
    }

    public void FreeFrame(ulong pa)
    {
        _memory.DiscardFrame(pa);
        _free.Add(pa);
        TableFramesInUse--;
    }

    /// <summary>A contiguous run of <paramref name="bytes"/> aligned to <paramref name="alignment"/>
    /// (a power of two ≥ 4 KiB); never reused.</summary>
    public ulong AllocateContiguous(ulong bytes, ulong alignment)
    {
        if (bytes == 0 || (alignment & (alignment - 1)) != 0 || alignment < PhysicalMemory.FrameSize)
            throw new ArgumentException("contiguous allocations need bytes > 0 and a power-of-two alignment ≥ 4 KiB");
        ulong rounded = (bytes + PhysicalMemory.FrameSize - 1) & ~(ulong)(PhysicalMemory.FrameSize - 1);
        return Bump(rounded, alignment);
    }

    private ulong Bump(ulong bytes, ulong alignment)
    {
        ulong start = (_next + alignment - 1) & ~(alignment - 1);
        if (start + bytes > Limit || start + bytes < start)
            throw new OutOfMemoryException($"simulated physical memory exhausted (limit 0x{Limit:x})");
        // Frames skipped by alignment are kept for single-frame allocations.
        for (ulong f = _next; f < start; f += PhysicalMemory.FrameSize) _free.Add(f);
        _next = start + bytes;
        return start;
    }
}
