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
        Errno rc = TryMmap(length, writable, alignment, out ulong va);
        return rc == Errno.OK ? va : throw new OutOfMemoryException($"mmap of 0x{length:x} bytes: {rc}");
    }

    /// <summary>
    /// mmap as a call: EINVAL for length 0; ENOMEM when the length rounded to the alignment wraps, when the
    /// virtual range would wrap past 2^64, or when the simulated machine cannot back it (the model populates
    /// every page up front, like MAP_POPULATE). The model's mappings grow upwards from <see cref="MmapBase"/>
    /// and are not held to x86-64's 47-bit TASK_SIZE, so that configs may give VMs more than 1 TiB.
    /// </summary>
    public Errno TryMmap(ulong length, bool writable, ulong alignment, out ulong va)
    {
        va = 0;
        if (length == 0) return Errno.EINVAL;
        ulong rounded = (length + alignment - 1) & ~(alignment - 1);
        if (rounded < length) return Errno.ENOMEM;
        ulong start = (_next + alignment - 1) & ~(alignment - 1);
        if (start < _next || start + rounded < start || start + rounded + HugePageSize < start) return Errno.ENOMEM;
        ulong pa;
        try
        {
            pa = _frames.AllocateContiguous(rounded, alignment);
        }
        catch (OutOfMemoryException)
        {
            return Errno.ENOMEM;
        }
        va = start;
        // Leave a 2 MiB guard gap so that adjacent mmaps never look like one contiguous range.
        _next = va + rounded + HugePageSize;
        _maps.Add(va, new UserMapping(va, rounded, pa, writable));
        return Errno.OK;
    }


    /// <summary>memfd_create + ftruncate(<paramref name="size"/>): the memory is allocated (and zero) up front.</summary>
    public Memfd CreateMemfd(ulong size)
        => TryCreateMemfd(size, out var file) == Errno.OK ? file : throw new ArgumentException($"memfd of 0x{size:x} bytes", nameof(size));

    /// <summary>
    /// memfd_create + ftruncate as calls: a size of 0 or one that is negative as an off_t (≥ 2^63) is EINVAL
    /// (do_sys_ftruncate); a size the simulated machine cannot back is ENOMEM (the model allocates the file's
    /// memory up front, where shmem would allocate on first touch).
    /// </summary>
    public Errno TryCreateMemfd(ulong size, out Memfd file)
    {
        file = null!;
        if (size == 0 || size > long.MaxValue) return Errno.EINVAL;
        ulong rounded = (size + HugePageSize - 1) & ~(HugePageSize - 1);
        if (rounded < size) return Errno.ENOMEM;
        try
        {
            file = new Memfd(_frames.AllocateContiguous(rounded, HugePageSize), size);
        }
        catch (OutOfMemoryException)
        {
            return Errno.ENOMEM;
        }
        return Errno.OK;
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
        ulong span = (rounded + HugePageSize - 1) & ~(HugePageSize - 1);
        if (rounded < length || span < rounded || va < _next || va + span < va || va + span + HugePageSize < va)
        {
            va = 0;
            return Errno.ENOMEM;
        }
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
    /// Pins [va, va+length): what pin_user_pages() does. EFAULT when any byte is unbacked, and EFAULT
    /// when <paramref name="write"/> (FOLL_WRITE) is asked of read-only memory, as GUP fails then. On success the physical runs
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
            if (write && !m.Writable) return Errno.EFAULT;
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
