using IommuSim.Uapi.Memory;

namespace IommuSim.Uapi.Iopt;

/// <summary>
/// struct iopt_pages: a run of user memory that one or more areas map (IOAS_COPY makes a second
/// area over the same pages). Pages are pinned while any area over them is in a domain; the
/// physical addresses come from the process's <see cref="UserAddressSpace"/>.
/// </summary>
public sealed class IoptPages(UserAddressSpace mm, ulong uptr, ulong length, bool writable)
{
    public UserAddressSpace Mm { get; } = mm;

    /// <summary>User VA of byte 0 of the run.</summary>
    public ulong Uptr { get; } = uptr;

    public ulong Length { get; } = length;

    /// <summary>Whether the pages were taken for writing (a WRITEABLE map needs this).</summary>
    public bool Writable { get; } = writable;
}
