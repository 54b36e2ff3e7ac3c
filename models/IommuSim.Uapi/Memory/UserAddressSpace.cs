using IommuSim.Hardware.Memory;

namespace IommuSim.Uapi.Memory;

/// <summary>One mmap()ed region of a simulated process: contiguous host-physical backing.</summary>
public sealed record UserMapping(ulong Start, ulong Length, ulong PhysicalBase, bool Writable)
{
    public ulong Last => Start + Length - 1;
}

/// <summary>
/// The virtual address space of one simulated process (a VMM, a DPDK program). MMAP hands out
/// 2 MiB-aligned virtual ranges backed by contiguous, 2 MiB-aligned host-physical memory from the
/// hardware frame allocator, so that pinning a user range yields real physical addresses and huge
/// IOMMU pages are possible exactly where a real THP-backed VMM would get them.
/// </summary>
public sealed class UserAddressSpace
{
    /// <summary>Where the first mmap lands: a typical x86-64 mmap base, far from IOVA 0.</summary>
    public const ulong MmapBase = 0x7f00_0000_0000UL;
    public const ulong HugePageSize = 2UL << 20;
    public const ulong PageSize = 4096;

    private readonly FrameAllocator _frames;
    private readonly SortedList<ulong, UserMapping> _maps = [];
    private ulong _next = MmapBase;

    public UserAddressSpace(FrameAllocator frames) => _frames = frames;

    /// <summary>RLIMIT_MEMLOCK and the locked/pinned page counters of the process.</summary>
    public MemlockAccount Memlock { get; } = new();

    /// <summary>
    /// mmap(NULL, length, PROT_READ | (writable ? PROT_WRITE : 0), MAP_PRIVATE|MAP_ANONYMOUS|MAP_POPULATE),
    /// backed by huge pages of <paramref name="alignment"/> (2 MiB THP by default, 1 GiB for hugetlbfs):
    /// virtual and physical addresses are both aligned to it.
    /// </summary>
    public ulong Mmap(ulong length, bool writable = true, ulong alignment = HugePageSize)
    {
        if (length == 0) throw new ArgumentException("mmap of 0 bytes", nameof(length));
        if (alignment < HugePageSize || (alignment & (alignment - 1)) != 0)
            throw new ArgumentException("mmap alignment must be a power of two of at least 2 MiB", nameof(alignment));
        ulong rounded = (length + alignment - 1) & ~(alignment - 1);
        ulong pa = _frames.AllocateContiguous(rounded, alignment);
        ulong va = (_next + alignment - 1) & ~(alignment - 1);
        // Leave a 2 MiB guard gap so that adjacent mmaps never look like one contiguous range.
        _next = va + rounded + HugePageSize;
        _maps.Add(va, new UserMapping(va, rounded, pa, writable));
        return va;
    }

    /// <summary>memfd_create + ftruncate(<paramref name="size"/>): the memory is allocated (and zero) up front.</summary>
    public Memfd CreateMemfd(ulong size)
    {
        if (size == 0) throw new ArgumentException("memfd of 0 bytes", nameof(size));
        ulong rounded = (size + HugePageSize - 1) & ~(HugePageSize - 1);
        return new Memfd(_frames.AllocateContiguous(rounded, HugePageSize), size);
    }

    /// <summary>
    /// mmap(NULL, length, …, MAP_SHARED, memfd, offset): the file's pages at a new 2 MiB-aligned VA. The offset must
    /// be page aligned and the range inside the file (EINVAL otherwise; a real mmap would SIGBUS past the end).
    /// </summary>
    public Errno MmapFile(Memfd file, ulong offset, ulong length, bool writable, out ulong va)
    {
        va = 0;
        if (length == 0 || (offset & (PageSize - 1)) != 0 || offset > file.Size || length > file.Size - offset) return Errno.EINVAL;
        ulong rounded = (length + PageSize - 1) & ~(PageSize - 1);
        va = (_next + HugePageSize - 1) & ~(HugePageSize - 1);
        _next = va + ((rounded + HugePageSize - 1) & ~(HugePageSize - 1)) + HugePageSize;
        _maps.Add(va, new UserMapping(va, rounded, file.PhysicalBase + offset, writable));
        return Errno.OK;
    }

    public UserMapping? Find(ulong va)
    {
        foreach (var m in _maps.Values)
            if (va >= m.Start && va <= m.Last) return m;
        return null;
    }

    /// <summary>
    /// Pins [va, va+length): what pin_user_pages() does. EFAULT when any byte is unbacked, EPERM
    /// when <paramref name="write"/> is asked of read-only memory. On success the physical runs
    /// (contiguous per mapping) are returned in address order.
    /// </summary>
    public Errno Pin(ulong va, ulong length, bool write, List<(ulong Va, ulong Pa, ulong Length)> runs)
    {
        runs.Clear();
        if (length == 0) return Errno.OK;
        ulong end = va + length;
        if (end < va) return Errno.EFAULT;
        ulong cur = va;
        while (cur < end)
        {
            var m = Find(cur);
            if (m is null) return Errno.EFAULT;
            if (write && !m.Writable) return Errno.EPERM;
            ulong n = Math.Min(end, m.Start + m.Length) - cur;
            runs.Add((cur, m.PhysicalBase + (cur - m.Start), n));
            cur += n;
        }
        return Errno.OK;
    }

    /// <summary>Whether every byte of the range is backed and, if asked, writable.</summary>
    public Errno Check(ulong va, ulong length, bool write) => Pin(va, length, write, []);

    /// <summary>The physical address behind one user byte, or null when unbacked.</summary>
    public ulong? Translate(ulong va) => Find(va) is { } m ? m.PhysicalBase + (va - m.Start) : null;
}
