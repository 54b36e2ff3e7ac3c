using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests;

/// <summary>iommufd.md section 2: the IOAS ioctls' validation and errno, one case per bullet.</summary>
public class IoasIoctlTests
{
    private const uint R = IommuIoasMapFlags.READABLE, W = IommuIoasMapFlags.WRITEABLE, F = IommuIoasMapFlags.FIXED_IOVA;

    [Theory]
    [InlineData(0u, Errno.OK)]
    [InlineData(1u, Errno.EOPNOTSUPP)]
    public void IoasAlloc_Flags(uint flags, Errno expected)
    {
        var s = new Sim();
        var c = new IommuIoasAlloc { flags = flags };
        Assert.Equal(expected, s.Ctx.IoasAlloc(c));
        if (expected == Errno.OK)
        {
            Assert.Equal(1u, c.out_ioas_id);
            var ranges = new IommuIoasIovaRanges { ioas_id = c.out_ioas_id, num_iovas = 4 };
            Assert.Equal(Errno.OK, s.Ctx.IoasIovaRanges(ranges));
            Assert.Equal(1u, ranges.num_iovas);           // no reserved ranges: all of [0, ULONG_MAX]
            Assert.Equal(ulong.MaxValue, ranges.allowed_iovas[0].last);
            Assert.Equal(1ul, ranges.out_iova_alignment);
        }
    }

    public static TheoryData<string, uint, ulong, ulong, ulong, Errno> MapCases() => new()
    {
        // name, flags, va offset, length, iova, errno (IOAS without domains: alignment 1)
        { "ok fixed", F | R | W, 0, 0x1000, 0x10000, Errno.OK },
        { "unknown flag", F | R | 8, 0, 0x1000, 0x10000, Errno.EOPNOTSUPP },
        { "iova ULONG_MAX", F | R, 0, 0x1000, ulong.MaxValue, Errno.EOVERFLOW },
        { "length ULONG_MAX", F | R, 0, ulong.MaxValue, 0x10000, Errno.EOVERFLOW },
        { "no read no write", F, 0, 0x1000, 0x10000, Errno.EINVAL },
        { "length 0", F | R, 0, 0, 0x10000, Errno.EINVAL },
        { "iova+length-1 overflows", F | R, 0, 0x2000, ulong.MaxValue - 0xFFF, Errno.EOVERFLOW },
        { "byte granular without domain", F | R, 0x10, 0x10, 0x10010, Errno.OK },
        { "overlap existing", F | R, 0, 0x1000, 0x20800, Errno.EEXIST },
    };

    [Theory]
    [MemberData(nameof(MapCases))]
    public void IoasMap_Validation(string name, uint flags, ulong vaOffset, ulong length, ulong iova, Errno expected)
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf + 0x100000, 0x1000, 0x20000));
        Assert.True(expected == s.Map(ioas, buf + vaOffset, length, iova, flags), name);
    }

    [Fact]
    public void IoasMap_BadIoas_IsENOENT()
        => Assert.Equal(Errno.ENOENT, new Sim().Map(7, 0x7f0000000000, 0x1000, 0x1000));

    [Fact]
    public void IoasMap_WithDomain_EnforcesAlignmentReservedRangesAndOffset()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.EINVAL, s.Map(ioas, buf, 0x800, 0x10000));            // length not a multiple of 4K
        Assert.Equal(Errno.EINVAL, s.Map(ioas, buf, 0x1000, 0x10800));           // unaligned iova
        Assert.Equal(Errno.EINVAL, s.Map(ioas, buf + 0x800, 0x1000, 0x10000));   // VA offset in page not aligned
        Assert.Equal(Errno.EINVAL, s.Map(ioas, buf, 0x1000, 0xFEE10000));        // MSI window
        Assert.Equal(Errno.EINVAL, s.Map(ioas, buf, 0x1000, 1UL << 48));         // beyond the aperture
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 0x1000, 0x10000));
    }

    /// <summary>iommufd_ioas_map never looks at the VMA: only pinning (pin_user_pages with FOLL_WRITE, in
    /// pfn_reader_user_pin) fails, with EFAULT, at the first attach here (no domain at map time).</summary>
    [Fact]
    public void IoasMap_WriteableOnReadOnlyMemory_And_Unbacked_FailWithEFAULT_WhenPinned()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong ro = s.Mmap(0x1000, writable: false);
        Assert.Equal(Errno.OK, s.Map(ioas, ro, 0x1000, 0x40000, F | R | W));
        var probe = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.EFAULT, s.Attach(probe, ioas, out _));
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x40000, 0x1000));
        s.Ctx.DeviceUnbind(probe);
        Assert.Equal(Errno.OK, s.Map(ioas, ro, 0x1000, 0x10000, F | R));

        // Without a domain nothing is pinned: unbacked memory maps, and attach fails with EFAULT.
        Assert.Equal(Errno.OK, s.Map(ioas, 0x1000_0000, 0x1000, 0x20000, F | R));
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.EFAULT, s.Attach(dev, ioas, out _));
        Assert.Empty(s.IoasObj(ioas).Iopt.Domains);
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x20000, 0x1000));
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        // With a domain the map pins at once.
        Assert.Equal(Errno.EFAULT, s.Map(ioas, 0x1000_0000, 0x1000, 0x30000, F | R));
        Assert.Equal(Errno.EFAULT, s.Map(ioas, ro, 0x1000, 0x30000, F | R | W));
        Assert.Null(s.IoasObj(ioas).Iopt.FirstArea(0x30000, 0x30FFF));
    }

    [Fact]
    public void IoasCopy_SharesPagesAcrossContiguousAreas_AtAnyOffset()
    {
        var s = new Sim();
        uint src = s.IoasAlloc(), dst = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(src, buf, 0x2000, 0x100000));
        Assert.Equal(Errno.OK, s.Map(src, buf + 0x10000, 0x2000, 0x102000));
        var c = new IommuIoasCopy { src_ioas_id = src, dst_ioas_id = dst, src_iova = 0x101800, length = 0x1000, dst_iova = 0x5000800, flags = F | R };
        Assert.Equal(Errno.OK, s.Ctx.IoasCopy(c));
        var areas = s.IoasObj(dst).Iopt.Areas;
        Assert.Equal(2, areas.Count);                    // one per source area
        Assert.Equal(buf + 0x1800, areas[0].SourceAddress);
        Assert.Equal(buf + 0x10000, areas[1].SourceAddress);

        // Same IOAS is allowed; a gap in the source is ENOENT; the destination is checked like a map.
        Assert.Equal(Errno.OK, s.Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = src, dst_ioas_id = src, src_iova = 0x100000, length = 0x1000, dst_iova = 0x900000, flags = F | R }));
        Assert.Equal(Errno.ENOENT, s.Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = src, dst_ioas_id = dst, src_iova = 0x103000, length = 0x2000, dst_iova = 0x800000, flags = F | R }));
        Assert.Equal(Errno.EEXIST, s.Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = src, dst_ioas_id = dst, src_iova = 0x100000, length = 0x1000, dst_iova = 0x5000000, flags = F | R }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = src, dst_ioas_id = dst, src_iova = 0x100000, length = 0x1000, flags = 0x10 | R }));
        Assert.Equal(Errno.EOVERFLOW, s.Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = src, dst_ioas_id = dst, src_iova = ulong.MaxValue, length = 0x1000, flags = R }));
        Assert.Equal(Errno.EINVAL, s.Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = src, dst_ioas_id = dst, src_iova = 0x100000, length = 0x1000, flags = F }));
        Assert.Equal(Errno.ENOENT, s.Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = 99, dst_ioas_id = dst, src_iova = 0x100000, length = 0x1000, flags = R }));
        Assert.Equal(Errno.ENOENT, s.Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = src, dst_ioas_id = 99, src_iova = 0x100000, length = 0x1000, flags = R }));
    }

    [Fact]
    public void IoasCopy_WriteableOverReadOnlyPages_IsEPERM()
    {
        var s = new Sim();
        uint src = s.IoasAlloc(), dst = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Map(src, s.Mmap(0x1000), 0x1000, 0x100000, F | R));
        Assert.Equal(Errno.EPERM, s.Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = src, dst_ioas_id = dst, src_iova = 0x100000, length = 0x1000, dst_iova = 0x100000, flags = F | R | W }));
    }

    public static TheoryData<string, ulong, ulong, Errno, ulong> UnmapCases() => new()
    {
        // Areas: [0x10000,+0x2000) [0x12000,+0x2000) [0x20000,+0x1000)
        { "whole area", 0x10000, 0x2000, Errno.OK, 0x2000 },
        { "two adjacent areas", 0x10000, 0x4000, Errno.OK, 0x4000 },
        { "range larger than the areas", 0x0, 0x100000, Errno.OK, 0x5000 },
        { "part of an area", 0x10000, 0x1000, Errno.ENOENT, 0 },
        { "straddles the end", 0x11000, 0x2000, Errno.ENOENT, 0 },
        { "nothing there", 0x30000, 0x1000, Errno.ENOENT, 0 },
        { "length 0", 0x10000, 0, Errno.EINVAL, 0 },
        { "overflow", 0x10000, ulong.MaxValue - 0x1000, Errno.EOVERFLOW, 0 },
        { "length ULONG_MAX", 0x10000, ulong.MaxValue, Errno.EOVERFLOW, 0 },
        { "unmap all", 0, ulong.MaxValue, Errno.OK, 0x5000 },
    };

    [Theory]
    [MemberData(nameof(UnmapCases))]
    public void IoasUnmap_WholeAreasOnly(string name, ulong iova, ulong length, Errno expected, ulong unmapped)
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 0x2000, 0x10000));
        Assert.Equal(Errno.OK, s.Map(ioas, buf + 0x2000, 0x2000, 0x12000));
        Assert.Equal(Errno.OK, s.Map(ioas, buf + 0x4000, 0x1000, 0x20000));
        var c = new IommuIoasUnmap { ioas_id = ioas, iova = iova, length = length };
        Assert.True(expected == s.Ctx.IoasUnmap(c), name);
        if (expected == Errno.OK) Assert.Equal(unmapped, c.length);
        else Assert.Equal(3, s.IoasObj(ioas).Iopt.Areas.Count);
    }

    [Fact]
    public void IoasUnmap_StopsAtAStraddlingArea_AfterRemovingTheWholeOnesBeforeIt()
    {
        // As the kernel's loop does: areas fully inside are unmapped in order until one sticks out.
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 0x2000, 0x10000));
        Assert.Equal(Errno.OK, s.Map(ioas, buf + 0x2000, 0x2000, 0x12000));
        Assert.Equal(Errno.ENOENT, s.Unmap(ioas, 0x10000, 0x3000));
        var area = Assert.Single(s.IoasObj(ioas).Iopt.Areas);
        Assert.Equal(0x12000ul, area.Iova);
    }

    [Fact]
    public void IoasUnmap_All_OnAnEmptyIoas_Succeeds()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var c = new IommuIoasUnmap { ioas_id = ioas, iova = 0, length = ulong.MaxValue };
        Assert.Equal(Errno.OK, s.Ctx.IoasUnmap(c));
        Assert.Equal(0ul, c.length);
    }

    [Fact]
    public void IovaRanges_TooSmall_IsEMSGSIZE_WithTheTotal_AndFirstEntriesFilled()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        var c = new IommuIoasIovaRanges { ioas_id = ioas, num_iovas = 1 };
        Assert.Equal(Errno.EMSGSIZE, s.Ctx.IoasIovaRanges(c));
        Assert.Equal(2u, c.num_iovas);
        Assert.Equal(0xFEDFFFFFul, c.allowed_iovas[0].last);
        c = new IommuIoasIovaRanges { ioas_id = ioas, num_iovas = 2 };
        Assert.Equal(Errno.OK, s.Ctx.IoasIovaRanges(c));
        Assert.Equal(0xFEF00000ul, c.allowed_iovas[1].start);
        Assert.Equal((1ul << 48) - 1, c.allowed_iovas[1].last);
        Assert.Equal(0x1000ul, c.out_iova_alignment);
        Assert.Equal(Errno.ENOENT, s.Ctx.IoasIovaRanges(new IommuIoasIovaRanges { ioas_id = 42 }));
    }

    [Theory]
    [InlineData(new ulong[] { 0x1000, 0x1000 }, Errno.EINVAL)]                       // start == last
    [InlineData(new ulong[] { 0x2000, 0x1000 }, Errno.EINVAL)]                       // start > last
    [InlineData(new ulong[] { 0x1000, 0x4fff, 0x4000, 0x8fff }, Errno.EINVAL)]       // overlapping
    [InlineData(new ulong[] { 0xFE000000, 0xFEE00000 }, Errno.EADDRINUSE)]           // touches the MSI window
    [InlineData(new ulong[] { 0x1000, 0x4fff, 0x10000, 0x1ffff }, Errno.OK)]
    [InlineData(new ulong[] { }, Errno.OK)]
    public void AllowIovas_Validation(ulong[] pairs, Errno expected)
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        Assert.Equal(Errno.OK, s.Ctx.IoasAllowIovas(new IommuIoasAllowIovas { ioas_id = ioas, num_iovas = 1, allowed_iovas = [new() { start = 0x100000, last = 0x1fffff }] }));
        var ranges = Enumerable.Range(0, pairs.Length / 2).Select(i => new IommuIovaRange { start = pairs[2 * i], last = pairs[2 * i + 1] }).ToArray();
        Assert.Equal(expected, s.Ctx.IoasAllowIovas(new IommuIoasAllowIovas { ioas_id = ioas, num_iovas = (uint)ranges.Length, allowed_iovas = ranges }));
        var allowed = s.IoasObj(ioas).Iopt.Allowed;
        if (expected == Errno.OK) Assert.Equal(ranges.Length, allowed.Count);
        else Assert.Equal((0x100000ul, 0x1ffffful), Assert.Single(allowed)); // atomic: the old list stays
    }

    [Fact]
    public void AllowIovas_BlocksLaterReservations_ButNotFixedMaps()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Ctx.IoasAllowIovas(new IommuIoasAllowIovas { ioas_id = ioas, num_iovas = 1, allowed_iovas = [new() { start = 0xFE000000, last = 0xFEFFFFFF }] }));
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x1000), 0x1000, 0x10000)); // outside the allowed list: fine when fixed
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.EADDRINUSE, s.Attach(dev, ioas, out _));         // the MSI reservation would intersect
    }

    [Fact]
    public void Attach_RaisesAlignment_AndRefusesUnalignedAreas_WithEADDRINUSE()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x1000) + 0x10, 0x10, 0x10010));
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.EADDRINUSE, s.Attach(dev, ioas, out _));
        Assert.Equal(1ul, s.IoasObj(ioas).Iopt.IovaAlignment);
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x10010, 0x10));
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        Assert.Equal(0x1000ul, s.IoasObj(ioas).Iopt.IovaAlignment);
    }

    [Fact]
    public void Attach_MappingOverTheMsiWindow_IsEADDRINUSE()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x1000), 0x1000, 0xFEE00000));
        Assert.Equal(Errno.EADDRINUSE, s.Attach(s.Bind(Sim.Dev3), ioas, out _));
    }

    [Fact]
    public void Detach_RemovesTheReservationsOfThatDomainAndDevice()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        Assert.NotEmpty(s.IoasObj(ioas).Iopt.Reserved);
        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(dev, 0));
        Assert.Empty(s.IoasObj(ioas).Iopt.Reserved);
        Assert.Equal(1ul, s.IoasObj(ioas).Iopt.IovaAlignment);
    }

    [Fact]
    public void OptionRlimitMode_NeedsPrivilegeAnEmptyContextAndAValidValue()
    {
        var s = new Sim();
        var set = new IommuOption { option_id = IommuOptionId.RLIMIT_MODE, op = IommuOptionOp.SET, val64 = 1 };
        Assert.Equal(Errno.EINVAL, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.RLIMIT_MODE, op = IommuOptionOp.SET, val64 = 2 }));
        // The option is context-wide: an object id is EOPNOTSUPP (iommufd_option_rlimit_mode), for GET too.
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.RLIMIT_MODE, op = IommuOptionOp.SET, object_id = 1, val64 = 1 }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.RLIMIT_MODE, op = IommuOptionOp.GET, object_id = 1 }));
        Assert.Equal(Errno.OK, s.Ctx.Option(set));
        var get = new IommuOption { option_id = IommuOptionId.RLIMIT_MODE, op = IommuOptionOp.GET };
        Assert.Equal(Errno.OK, s.Ctx.Option(get));
        Assert.Equal(1ul, get.val64);
        s.IoasAlloc();
        Assert.Equal(Errno.EBUSY, s.Ctx.Option(set));
        // A context with objects is EBUSY before the value is looked at.
        Assert.Equal(Errno.EBUSY, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.RLIMIT_MODE, op = IommuOptionOp.SET, val64 = 2 }));

        var unpriv = new Sim(new Hardware.PlatformSpec { Privileged = false });
        Assert.Equal(Errno.EPERM, unpriv.Ctx.Option(set));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.Option(new IommuOption { option_id = 7, op = IommuOptionOp.GET }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.RLIMIT_MODE, op = 5 }));
    }

    [Fact]
    public void OptionHugePages_Rules()
    {
        var s = new Sim();
        Assert.Equal(Errno.ENOENT, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.GET, object_id = 5 }));
        uint ioas = s.IoasAlloc();
        Errno Set(ulong v) => s.Ctx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.SET, object_id = ioas, val64 = v });
        Assert.Equal(Errno.EINVAL, Set(2));

        // Alignment rise conflicts with a byte-granular area.
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x1000) + 8, 8, 0x10008));
        Assert.Equal(Errno.EADDRINUSE, Set(0));
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x10008, 8));

        // Domains and areas both present: cannot turn large pages off any more.
        ulong buf = s.Mmap(0x400000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 0x400000, 0x40000000));
        Assert.Equal(Errno.OK, s.Attach(s.Bind(Sim.Dev3), ioas, out _));
        Assert.Equal(Errno.EINVAL, Set(0));
        Assert.Equal(Errno.OK, Set(1));
        var get = new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.GET, object_id = ioas };
        Assert.Equal(Errno.OK, s.Ctx.Option(get));
        Assert.Equal(1ul, get.val64);
    }

    [Fact]
    public void HugePages_DecideTheLeafSize()
    {
        foreach (bool huge in new[] { true, false })
        {
            var s = new Sim();
            uint ioas = s.IoasAlloc();
            if (!huge) Assert.Equal(Errno.OK, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.SET, object_id = ioas, val64 = 0 }));
            Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x400000), 0x400000, 0x40000000));
            Assert.Equal(Errno.OK, s.Attach(s.Bind(Sim.Dev3), ioas, out uint hwpt));
            var table = ((IommuSim.Uapi.Driver.VtdPagingDomain)((HwptPaging)s.Ctx.Lookup(hwpt)!).PagingDomain).Table;
            Assert.True(table.TryTranslate(0x40000000, out _, out _, out var size));
            Assert.Equal(huge ? PageSize.Size2M : PageSize.Size4K, size);
        }
    }

    [Fact]
    public void VfioIoas_GetSetClear()
    {
        var s = new Sim();
        Assert.Equal(Errno.ENODEV, s.Ctx.VfioIoas(new IommuVfioIoas { op = IommuVfioIoasOp.GET }));
        Assert.Equal(Errno.ENOENT, s.Ctx.VfioIoas(new IommuVfioIoas { op = IommuVfioIoasOp.SET, ioas_id = 3 }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.VfioIoas(new IommuVfioIoas { op = 9 }));
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Ctx.VfioIoas(new IommuVfioIoas { op = IommuVfioIoasOp.SET, ioas_id = ioas }));
        var get = new IommuVfioIoas { op = IommuVfioIoasOp.GET };
        Assert.Equal(Errno.OK, s.Ctx.VfioIoas(get));
        Assert.Equal(ioas, get.ioas_id);
        Assert.Equal(Errno.OK, s.Ctx.VfioIoas(new IommuVfioIoas { op = IommuVfioIoasOp.CLEAR }));
        Assert.NotNull(s.Ctx.Lookup(ioas)); // never destroyed by the compat ops
        Assert.Equal(Errno.ENODEV, s.Ctx.VfioIoas(new IommuVfioIoas { op = IommuVfioIoasOp.GET }));
    }

    [Fact]
    public void NonZeroReservedFields_AreEOPNOTSUPP()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.IoasMap(new IommuIoasMap { ioas_id = ioas, user_va = s.Mmap(0x1000), length = 0x1000, flags = R, __reserved = 1 }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.IoasIovaRanges(new IommuIoasIovaRanges { ioas_id = ioas, __reserved = 1 }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.IoasAllowIovas(new IommuIoasAllowIovas { ioas_id = ioas, __reserved = 1 }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, object_id = ioas, __reserved = 1 }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.VfioIoas(new IommuVfioIoas { op = IommuVfioIoasOp.GET, __reserved = 1 }));
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.HwptAlloc(new IommuHwptAlloc { pt_id = ioas, __reserved = 1 }));
    }
}
