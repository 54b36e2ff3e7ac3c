using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests;

/// <summary>iommufd.md section 3: MAP without FIXED_IOVA picks the lowest fit, exactly.</summary>
public class IovaAllocatorTests
{
    private const ulong VaBase = 0x7f00_0000_0000; // 2 MiB aligned (and far more)

    /// <summary>Fixed maps first ("iova:len" pairs), then one automatic map of (va offset, length).</summary>
    public static TheoryData<string, string, ulong, ulong, string, ulong> Cases() => new()
    {
        // name, fixed areas, va offset from a 2M-aligned base, length, allowed ranges, expected iova (0 = ENOSPC)
        { "empty: lowest is PAGE_SIZE", "", 0, 0x1000, "", 0x1000 },
        { "8K length aligns to 8K", "", 0, 0x2000, "", 0x2000 },
        { "3 pages round up to 16K alignment", "", 0, 0x3000, "", 0x4000 },
        { "page offset kept, alignment from the VA's low bit", "", 0x10, 0x20, "", 0x1010 },
        { "VA lowest bit limits alignment", "", 0x1000, 0x8000, "", 0x1000 },
        { "alignment capped at 2 MiB", "", 0, 0x800000, "", 0x200000 },
        { "skips a fixed area", "0x1000:0x1000", 0, 0x1000, "", 0x2000 },
        { "fills a hole between areas", "0x1000:0x1000,0x3000:0x1000", 0, 0x1000, "", 0x2000 },
        { "hole too small is skipped", "0x1000:0x1000,0x3000:0x1000", 0, 0x2000, "", 0x4000 },
        { "inside the allowed range", "", 0, 0x1000, "0x100000-0x1fffff", 0x100000 },
        { "allowed range aligned up", "", 0, 0x4000, "0x101000-0x1fffff", 0x104000 },
        { "second allowed range when the first is full", "0x100000:0x1000", 0, 0x1000, "0x100000-0x100fff,0x300000-0x3fffff", 0x300000 },
        { "nothing fits the allowed ranges", "", 0, 0x10000, "0x100000-0x107fff", 0 },
        { "allowed range below PAGE_SIZE is clipped", "", 0, 0x1000, "0x0-0x1fff", 0x1000 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void AutomaticIova_LowestFit(string name, string fixedAreas, ulong vaOffset, ulong length, string allowed, ulong expected)
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x1000000);
        Assert.Equal(VaBase, buf & ~0xFFFFFFUL);
        foreach (var item in fixedAreas.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = item.Split(':');
            Assert.Equal(Errno.OK, s.Map(ioas, buf + 0x800000, Convert.ToUInt64(p[1], 16), Convert.ToUInt64(p[0], 16)));
        }
        if (allowed.Length > 0)
        {
            var ranges = allowed.Split(',').Select(r => r.Split('-')).Select(r => new IommuIovaRange { start = Convert.ToUInt64(r[0], 16), last = Convert.ToUInt64(r[1], 16) }).ToArray();
            Assert.Equal(Errno.OK, s.Ctx.IoasAllowIovas(new IommuIoasAllowIovas { ioas_id = ioas, num_iovas = (uint)ranges.Length, allowed_iovas = ranges }));
        }
        var rc = s.MapAuto(ioas, buf + vaOffset, length, out ulong iova);
        if (expected == 0) Assert.True(rc == Errno.ENOSPC, $"{name}: {rc}");
        else
        {
            Assert.True(rc == Errno.OK, $"{name}: {rc}");
            Assert.True(expected == iova, $"{name}: got 0x{iova:x}, expected 0x{expected:x}");
        }
    }

    [Fact]
    public void AutomaticIova_AvoidsReservedRanges_AndNeverUsesIovaZero()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Attach(s.Bind(Sim.Dev3), ioas, out _));
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Ctx.IoasAllowIovas(new IommuIoasAllowIovas { ioas_id = ioas, num_iovas = 1, allowed_iovas = [new() { start = 0xFED00000, last = 0xFEDFFFFF }] }));
        Assert.Equal(Errno.OK, s.MapAuto(ioas, buf, 0x100000, out ulong a));
        Assert.Equal(0xFED00000ul, a);
        Assert.Equal(Errno.ENOSPC, s.MapAuto(ioas, buf, 0x1000, out _));   // the window is full; the MSI range is never used
    }

    [Theory]
    [InlineData(0ul, Errno.EINVAL)]                          // length 0 is refused before the allocator runs
    [InlineData(0x8000_0000_0000_0000ul, Errno.EOVERFLOW)]  // ≥ ULONG_MAX/2
    public void AutomaticIova_LengthLimits(ulong length, Errno expected)
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(expected, s.MapAuto(ioas, s.Mmap(0x1000), length, out _));
    }

    [Fact]
    public void AutomaticIova_AlignmentBelowTheIoasAlignment_IsEINVAL()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Attach(s.Bind(Sim.Dev3), ioas, out _));
        // A VA with bit 3 as its lowest set bit asks for 8-byte alignment; the IOAS needs 4 KiB.
        Assert.Equal(Errno.EINVAL, s.MapAuto(ioas, s.Mmap(0x2000) + 8, 0x1000, out _));
    }
}
