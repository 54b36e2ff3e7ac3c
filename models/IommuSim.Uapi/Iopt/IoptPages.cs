using IommuSim.Uapi.Memory;

namespace IommuSim.Uapi.Iopt;

/// <summary>
/// struct iopt_pages: a run of memory that one or more areas map (IOAS_COPY makes a second area over the
/// same pages). The run is either user memory (IOAS_MAP: <see cref="Uptr"/> in the process's
/// <see cref="UserAddressSpace"/>) or a range of a file (IOAS_MAP_FILE: <see cref="File"/> from
/// <see cref="FileStart"/>). Pages are pinned while any area over them is in a domain or an in-kernel
/// access holds them. Each 4 KiB page is charged to the process's RLIMIT_MEMLOCK accounting
/// (<see cref="AccountMode"/>) once, however many areas and accesses pin it.
/// </summary>
public sealed class IoptPages
{
    // Pin users per page of [the run's start rounded down to a page, start + Length), as sorted runs of pages with
    // the same non-zero count: memory follows the number of pins, not the length (a 1 TiB area is one run).
    private readonly List<(long First, long Last, int Users)> _users = [];

    /// <summary>User memory at <paramref name="uptr"/> (IOAS_MAP, VFIO_IOMMU_MAP_DMA).</summary>
    public IoptPages(UserAddressSpace mm, ulong uptr, ulong length, bool writable, PinAccountMode accountMode = PinAccountMode.None)
    {
        Mm = mm;
        Uptr = uptr;
        Length = length;
        Writable = writable;
        AccountMode = accountMode;
    }

    /// <summary>Bytes of the file <paramref name="file"/> from <paramref name="start"/> (IOAS_MAP_FILE); <paramref name="mm"/>
    /// is the process that pins them, whose RLIMIT_MEMLOCK is charged. A file that is not a memfd fails when pinned.</summary>
    public IoptPages(UserAddressSpace mm, object file, ulong start, ulong length, bool writable, PinAccountMode accountMode)
        : this(mm, 0, length, writable, accountMode)
    {
        File = file;
        FileStart = start;
    }

    public UserAddressSpace Mm { get; }

    /// <summary>User VA of byte 0 of the run (user memory).</summary>
    public ulong Uptr { get; }

    /// <summary>The file the run comes from (IOAS_MAP_FILE), else null.</summary>
    public object? File { get; }

    /// <summary>File offset of byte 0 of the run (IOAS_MAP_FILE).</summary>
    public ulong FileStart { get; }

    public ulong Length { get; }

    /// <summary>Whether the pages were taken for writing (a WRITEABLE map needs this).</summary>
    public bool Writable { get; }

    /// <summary>Which counter pinned pages are charged to.</summary>
    public PinAccountMode AccountMode { get; }

    /// <summary>Pages pinned now (npinned).</summary>
    public ulong PinnedPages { get; private set; }

    /// <summary>Where byte 0 of the run sits in its source (user VA or file offset): it fixes page boundaries and
    /// offsets within a page.</summary>
    public ulong SourceAddress => File is null ? Uptr : FileStart;

    /// <summary>
    /// The physical runs behind bytes [startByte, startByte + length) of the run, in order: pin_user_pages() for user
    /// memory (EFAULT unbacked or when writing read-only memory), memfd_pin_folios() for a file (EINVAL for a file
    /// that is not a memfd or a range beyond its end).
    /// </summary>
    public Errno Resolve(ulong startByte, ulong length, bool write, List<(ulong Va, ulong Pa, ulong Length)> runs)
    {
        if (File is null) return Mm.Pin(Uptr + startByte, length, write, runs);
        runs.Clear();
        if (File is not Memfd memfd) return Errno.EINVAL;
        ulong offset = FileStart + startByte;
        if (offset > memfd.Size || length > memfd.Size - offset) return Errno.EINVAL;
        if (length > 0) runs.Add((offset, memfd.PhysicalBase + offset, length));
        return Errno.OK;
    }

    /// <summary>Pins the pages under bytes [startByte, startByte + length) of the run, charging the ones not pinned
    /// yet: ENOMEM, pinning nothing, when that would exceed RLIMIT_MEMLOCK.</summary>
    public Errno Pin(ulong startByte, ulong length)
    {
        if (length == 0) return Errno.OK;
        var (first, last) = PageRange(startByte, length);
        ulong covered = 0;
        foreach (var (f, l, _) in _users)
            if (f <= last && l >= first) covered += (ulong)(Math.Min(l, last) - Math.Max(f, first) + 1);
        ulong fresh = (ulong)(last - first + 1) - covered;
        Errno rc = Mm.Memlock.Charge(AccountMode, fresh);
        if (rc != Errno.OK) return rc;
        AddUsers(first, last, +1);
        PinnedPages += fresh;
        return Errno.OK;
    }

    /// <summary>Releases a pin taken by <see cref="Pin"/> over the same bytes; pages left without users are uncharged.</summary>
    public void Unpin(ulong startByte, ulong length)
    {
        if (length == 0 || _users.Count == 0) return;
        var (first, last) = PageRange(startByte, length);
        ulong freed = 0;
        foreach (var (f, l, u) in _users)
            if (u == 1 && f <= last && l >= first) freed += (ulong)(Math.Min(l, last) - Math.Max(f, first) + 1);
        AddUsers(first, last, -1);
        PinnedPages -= freed;
        Mm.Memlock.Uncharge(AccountMode, freed);
    }

    /// <summary>Adds <paramref name="delta"/> users to pages [first, last] (never below zero), keeping the runs sorted,
    /// disjoint and merged.</summary>
    private void AddUsers(long first, long last, int delta)
    {
        var next = new List<(long First, long Last, int Users)>(_users.Count + 2);
        long cur = first;
        foreach (var (f, l, u) in _users)
        {
            if (l < first || f > last)
            {
                if (f > last && cur <= last) { Emit(next, cur, last, delta); cur = last + 1; }
                next.Add((f, l, u));
                continue;
            }
            if (f < first) next.Add((f, first - 1, u));
            long s = Math.Max(f, first), e = Math.Min(l, last);
            if (cur < s) Emit(next, cur, s - 1, delta);
            Emit(next, s, e, u + delta);
            cur = e + 1;
            if (l > last) next.Add((last + 1, l, u));
        }
        if (cur <= last) Emit(next, cur, last, delta);
        _users.Clear();
        foreach (var r in next)
        {
            if (_users.Count > 0 && _users[^1].Last + 1 == r.First && _users[^1].Users == r.Users) _users[^1] = (_users[^1].First, r.Last, r.Users);
            else _users.Add(r);
        }

        static void Emit(List<(long, long, int)> list, long f, long l, int users)
        {
            if (users > 0) list.Add((f, l, users));
        }
    }

    private (long First, long Last) PageRange(ulong startByte, ulong length)
    {
        ulong start = SourceAddress, basePage = start / UserAddressSpace.PageSize;
        return ((long)((start + startByte) / UserAddressSpace.PageSize - basePage),
                (long)((start + startByte + length - 1) / UserAddressSpace.PageSize - basePage));
    }
}
