using IommuSim.Uapi.Memory;

namespace IommuSim.Uapi.Iopt;

/// <summary>
/// struct iopt_pages: a run of user memory that one or more areas map (IOAS_COPY makes a second
/// area over the same pages). Pages are pinned while any area over them is in a domain or an
/// in-kernel access holds them; the physical addresses come from the process's
/// <see cref="UserAddressSpace"/>. Each 4 KiB page is charged to the process's RLIMIT_MEMLOCK
/// accounting (<see cref="AccountMode"/>) once, however many areas and accesses pin it.
/// </summary>
public sealed class IoptPages(UserAddressSpace mm, ulong uptr, ulong length, bool writable, PinAccountMode accountMode = PinAccountMode.None)
{
    private int[]? _users; // pin users per page of [Uptr rounded down to a page, Uptr + Length)

    public UserAddressSpace Mm { get; } = mm;

    /// <summary>User VA of byte 0 of the run.</summary>
    public ulong Uptr { get; } = uptr;

    public ulong Length { get; } = length;

    /// <summary>Whether the pages were taken for writing (a WRITEABLE map needs this).</summary>
    public bool Writable { get; } = writable;

    /// <summary>Which counter pinned pages are charged to.</summary>
    public PinAccountMode AccountMode { get; } = accountMode;

    /// <summary>Pages pinned now (npinned).</summary>
    public ulong PinnedPages { get; private set; }

    /// <summary>Pins the pages under bytes [startByte, startByte + length) of the run, charging the ones not pinned
    /// yet: ENOMEM, pinning nothing, when that would exceed RLIMIT_MEMLOCK.</summary>
    public Errno Pin(ulong startByte, ulong length)
    {
        if (length == 0) return Errno.OK;
        var (first, last) = PageRange(startByte, length);
        _users ??= new int[PageRange(0, Length).Last + 1];
        ulong fresh = 0;
        for (long i = first; i <= last; i++)
            if (_users[i] == 0) fresh++;
        Errno rc = Mm.Memlock.Charge(AccountMode, fresh);
        if (rc != Errno.OK) return rc;
        for (long i = first; i <= last; i++) _users[i]++;
        PinnedPages += fresh;
        return Errno.OK;
    }

    /// <summary>Releases a pin taken by <see cref="Pin"/> over the same bytes; pages left without users are uncharged.</summary>
    public void Unpin(ulong startByte, ulong length)
    {
        if (length == 0 || _users is null) return;
        var (first, last) = PageRange(startByte, length);
        ulong freed = 0;
        for (long i = first; i <= last; i++)
        {
            if (_users[i] == 0) continue;
            if (--_users[i] == 0) freed++;
        }
        PinnedPages -= freed;
        Mm.Memlock.Uncharge(AccountMode, freed);
    }

    private (long First, long Last) PageRange(ulong startByte, ulong length)
    {
        ulong basePage = Uptr / UserAddressSpace.PageSize;
        return ((long)((Uptr + startByte) / UserAddressSpace.PageSize - basePage),
                (long)((Uptr + startByte + length - 1) / UserAddressSpace.PageSize - basePage));
    }
}
