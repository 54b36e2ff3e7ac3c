using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Memory;

namespace IommuSim.Uapi.Tests;

/// <summary>IOMMU_IOAS_MAP_FILE: a memfd range mapped by file offset (iommufd_ioas_map_file, memfd_pin_folios).</summary>
public class MapFileTests
{
    private const uint Frw = IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE;

    private static IommuIoasMapFile Cmd(uint ioas, ulong start, ulong length, ulong iova, uint flags = Frw)
        => new() { ioas_id = ioas, start = start, length = length, iova = iova, flags = flags };

    [Fact]
    public void A_file_range_and_its_mmap_reach_the_same_physical_pages()
    {
        var s = new Sim();
        int fd = s.Process.CreateMemfd(0x400000, out var memfd);
        Assert.Equal(Errno.OK, s.Process.Mm.MmapFile(memfd, 0x200000, 0x200000, writable: true, out ulong va));
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Attach(s.Bind(Sim.Dev3), ioas, out _));
        Assert.Equal(Errno.OK, s.Ctx.IoasMapFile(Cmd(ioas, 0x200000, 0x200000, 0x100000), s.Process.File(fd)));
        Assert.Equal(Errno.OK, s.Map(ioas, va, 0x200000, 0x800000));
        var byFile = s.Dma(Sim.Dev3, 0x100000 + 0x1234, Access.Write);
        var byVa = s.Dma(Sim.Dev3, 0x800000 + 0x1234, Access.Read);
        Assert.False(byFile.Faulted);
        Assert.Equal(memfd.PhysicalBase + 0x201234, byFile.PhysicalAddress);
        Assert.Equal(byFile.PhysicalAddress, byVa.PhysicalAddress);
        // Pinned and charged like user memory: two iopt_pages of 512 pages each.
        Assert.Equal(1024UL, s.Process.Mm.Memlock.UserLockedPages);
    }

    [Fact]
    public void The_allocator_aligns_a_file_mapping_by_its_file_offset()
    {
        var s = new Sim();
        int fd = s.Process.CreateMemfd(0x800000, out _);
        uint ioas = s.IoasAlloc();
        var c = Cmd(ioas, 0x200000, 0x200000, 0, IommuIoasMapFlags.READABLE);
        Assert.Equal(Errno.OK, s.Ctx.IoasMapFile(c, s.Process.File(fd)));
        Assert.Equal(0UL, c.iova % 0x200000); // a 2 MiB-aligned offset gets a 2 MiB-aligned IOVA (huge IOMMU pages)
    }

    [Fact]
    public void Argument_checks_come_in_the_kernels_order()
    {
        var s = new Sim();
        int fd = s.Process.CreateMemfd(0x200000, out _);
        object? file = s.Process.File(fd);
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.IoasMapFile(Cmd(77, 0, 0x1000, 0, 0x100 | Frw), null));
        Assert.Equal(Errno.EOVERFLOW, s.Ctx.IoasMapFile(Cmd(77, 0, ulong.MaxValue, 0), null));
        Assert.Equal(Errno.EINVAL, s.Ctx.IoasMapFile(Cmd(77, 0, 0x1000, 0, IommuIoasMapFlags.FIXED_IOVA), null));
        Assert.Equal(Errno.ENOENT, s.Ctx.IoasMapFile(Cmd(77, 0, 0x1000, 0), null));
        Assert.Equal(Errno.EBADF, s.Ctx.IoasMapFile(Cmd(ioas, 0, 0x1000, 0), null));
        Assert.Equal(Errno.EINVAL, s.Ctx.IoasMapFile(Cmd(ioas, 0, 0, 0x100000), file));
        Assert.Equal(Errno.EOVERFLOW, s.Ctx.IoasMapFile(Cmd(ioas, ulong.MaxValue - 0x10, 0x1000, 0x100000), file));
    }

    [Fact]
    public void A_range_past_the_end_or_a_file_that_is_no_memfd_fails_when_pinned()
    {
        var s = new Sim();
        int fd = s.Process.CreateMemfd(0x200000, out _);
        uint ioas = s.IoasAlloc();
        // No domain yet: accepted, since nothing is pinned.
        Assert.Equal(Errno.OK, s.Ctx.IoasMapFile(Cmd(ioas, 0x100000, 0x200000, 0x100000), s.Process.File(fd)));
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.EINVAL, s.Attach(dev, ioas, out _));
        Assert.Equal(0UL, s.Process.Mm.Memlock.PinnedPages);
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x100000, 0x200000));
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        // With a domain the same range fails at once, and so does an fd that is not a memfd (the iommufd itself).
        Assert.Equal(Errno.EINVAL, s.Ctx.IoasMapFile(Cmd(ioas, 0x100000, 0x200000, 0x100000), s.Process.File(fd)));
        Assert.Equal(Errno.EINVAL, s.Ctx.IoasMapFile(Cmd(ioas, 0, 0x1000, 0x100000), s.Ctx));
        Assert.Empty(s.IoasObj(ioas).Iopt.Areas);
        Assert.Equal(Errno.OK, s.Ctx.IoasMapFile(Cmd(ioas, 0x100000, 0x100000, 0x100000), s.Process.File(fd)));
        Assert.Equal(256UL, s.Process.Mm.Memlock.PinnedPages);
    }
}
