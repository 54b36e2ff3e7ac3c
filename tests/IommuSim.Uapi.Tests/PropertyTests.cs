using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests;

/// <summary>
/// Random MAP/COPY/UNMAP sequences (seeded) against an IOAS with a device attached: the IOAS, the
/// domain's page table and the hardware (IOTLB included) must agree after every step, and a DMA
/// after a completed unmap never reaches the unmapped page.
/// </summary>
public class PropertyTests
{
    private const ulong Page = 0x1000;
    private const ulong Window = 0x4000_0000;     // IOVAs used: [1 GiB, 1 GiB + 64 MiB)
    private const ulong WindowPages = 0x4000;
    private const ulong PoolBytes = 0x200_0000;   // 32 MiB of user memory

    /// <summary>The test's own reference: IOVA page → user VA of the page.</summary>
    private sealed record RefArea(ulong Iova, ulong Length, ulong Va, Access Prot)
    {
        public ulong Last => Iova + Length - 1;
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(4, false)]
    public void RandomSequences_KeepIoasTablesAndIotlbConsistent(int seed, bool hugePages)
    {
        var rng = new Random(seed);
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        if (!hugePages)
            Assert.Equal(Errno.OK, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.SET, object_id = ioas, val64 = 0 }));
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out uint hwptId));
        var table = ((IommuSim.Uapi.Driver.VtdPagingDomain)((HwptPaging)s.Ctx.Lookup(hwptId)!).PagingDomain).Table;
        ulong pool = s.Mmap(PoolBytes);
        var model = new List<RefArea>();

        for (int step = 0; step < 120; step++)
        {
            int op = rng.Next(10);
            var touched = new List<(ulong Iova, ulong Length)>();
            if (op < 4)
            {
                // Fixed map, sometimes 2 MiB aligned so that huge leaves appear.
                bool big = rng.Next(4) == 0;
                ulong len = big ? 0x200000UL * (ulong)rng.Next(1, 3) : Page * (ulong)rng.Next(1, 33);
                ulong iova = big ? Window + 0x200000UL * (ulong)rng.Next(0, 32) : Window + Page * (ulong)rng.Next(0, (int)WindowPages - 32);
                ulong va = big ? pool + 0x200000UL * (ulong)rng.Next(0, 8) : pool + Page * (ulong)rng.Next(0, 4096);
                var prot = rng.Next(3) == 0 ? Access.Read : Access.ReadWrite;
                uint flags = IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.READABLE | (prot == Access.ReadWrite ? IommuIoasMapFlags.WRITEABLE : 0);
                var rc = s.Map(ioas, va, len, iova, flags);
                bool overlaps = model.Any(a => a.Iova <= iova + len - 1 && iova <= a.Last);
                Assert.Equal(overlaps ? Errno.EEXIST : Errno.OK, rc);
                if (rc == Errno.OK) model.Add(new RefArea(iova, len, va, prot));
                touched.Add((iova, len));
            }
            else if (op < 5)
            {
                // Automatic IOVA: the allocator's pick must be free and page aligned.
                ulong len = Page * (ulong)rng.Next(1, 9);
                ulong va = pool + Page * (ulong)rng.Next(0, 4096);
                Assert.Equal(Errno.OK, s.MapAuto(ioas, va, len, out ulong iova));
                Assert.Equal(0ul, iova % Page);
                Assert.DoesNotContain(model, a => a.Iova <= iova + len - 1 && iova <= a.Last);
                model.Add(new RefArea(iova, len, va, Access.ReadWrite));
                touched.Add((iova, len));
            }
            else if (op < 6 && model.Count > 0)
            {
                // Copy a sub-range of one area to a free spot.
                var src = model[rng.Next(model.Count)];
                ulong pages = src.Length / Page;
                ulong off = Page * (ulong)rng.Next(0, (int)pages);
                ulong len = Page * (ulong)rng.Next(1, (int)(pages - off / Page) + 1);
                ulong dst = Window + Page * (ulong)rng.Next(0, (int)WindowPages - 32);
                var c = new IommuIoasCopy { src_ioas_id = ioas, dst_ioas_id = ioas, src_iova = src.Iova + off, length = len, dst_iova = dst, flags = IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.READABLE };
                var rc = s.Ctx.IoasCopy(c);
                bool overlaps = model.Any(a => a.Iova <= dst + len - 1 && dst <= a.Last);
                Assert.Equal(overlaps ? Errno.EEXIST : Errno.OK, rc);
                if (rc == Errno.OK) model.Add(new RefArea(dst, len, src.Va + off, Access.Read));
                touched.Add((dst, len));
            }
            else if (model.Count > 0)
            {
                // Unmap: an exact area, a range around several, or a random (often partial) range.
                var a = model[rng.Next(model.Count)];
                (ulong iova, ulong len) = rng.Next(3) switch
                {
                    0 => (a.Iova, a.Length),
                    1 => (a.Iova >= Page * 8 ? a.Iova - Page * 8 : a.Iova, a.Length + Page * 16),
                    _ => (a.Iova + Page * (ulong)rng.Next(0, 2), Page * (ulong)rng.Next(1, 64)),
                };
                // Warm the IOTLB on what is about to go, so that a missing flush would show.
                var probes = model.Where(m => m.Iova <= iova + len - 1 && iova <= m.Last).Select(m => m.Iova).ToList();
                foreach (ulong p in probes) Assert.False(s.Dma(Sim.Dev3, p).Faulted);

                var rc = s.Unmap(ioas, iova, len);
                // Reference semantics: whole areas, lowest first, stop at the first one sticking out.
                var expectedRemoved = new List<RefArea>();
                Errno expected = Errno.OK;
                foreach (var m in model.Where(m => m.Iova <= iova + len - 1 && iova <= m.Last).OrderBy(m => m.Iova))
                {
                    if (m.Iova < iova || m.Last > iova + len - 1) { expected = Errno.ENOENT; break; }
                    expectedRemoved.Add(m);
                }
                if (expected == Errno.OK && expectedRemoved.Count == 0) expected = Errno.ENOENT;
                Assert.Equal(expected, rc);
                foreach (var m in expectedRemoved)
                {
                    model.Remove(m);
                    // Strict unmap: the completed call left no usable translation behind.
                    var r = s.Dma(Sim.Dev3, m.Iova, Access.Read);
                    Assert.True(r.Faulted, $"seed {seed} step {step}: DMA to unmapped 0x{m.Iova:x} reached 0x{r.PhysicalAddress:x}");
                    var r2 = s.Dma(Sim.Dev3, m.Last & ~(Page - 1), Access.Read);
                    Assert.True(r2.Faulted);
                }
                touched.Add((iova, len));
            }

            CheckConsistency(s, ioas, table, model, touched, rng);
        }
    }

    private static void CheckConsistency(Sim s, uint ioas, PageTable table, List<RefArea> model, List<(ulong Iova, ulong Length)> touched, Random rng)
    {
        var areas = s.IoasObj(ioas).Iopt.Areas;
        Assert.Equal(model.Count, areas.Count);
        for (int i = 1; i < areas.Count; i++) Assert.True(areas[i - 1].Last < areas[i].Iova, "areas overlap or are out of order");
        ulong mapped = 0;
        foreach (var m in model) mapped += m.Length;
        Assert.Equal(mapped, table.MappedBytes);

        var pages = new List<ulong>();
        foreach (var (iova, len) in touched)
            for (ulong p = iova & ~(Page - 1); p < iova + len && pages.Count < 512; p += Page) pages.Add(p);
        for (int i = 0; i < 32; i++) pages.Add(Window + Page * (ulong)rng.Next(0, (int)WindowPages));
        foreach (ulong p in pages)
        {
            var m = model.FirstOrDefault(a => a.Iova <= p && p <= a.Last);
            bool ok = table.TryTranslate(p, out ulong pa, out var access, out _);
            if (m is null)
            {
                Assert.False(ok, $"0x{p:x} is in the table but in no area");
                continue;
            }
            Assert.True(ok, $"0x{p:x} is in an area but not in the table");
            Assert.Equal(s.Process.Mm.Translate(m.Va + (p - m.Iova)), pa);
            Assert.Equal(m.Prot, access);
        }
        // A few DMAs through the real hardware agree with the model too.
        for (int i = 0; i < 4 && pages.Count > 0; i++)
        {
            ulong p = pages[rng.Next(pages.Count)];
            var m = model.FirstOrDefault(a => a.Iova <= p && p <= a.Last);
            var r = s.Dma(Sim.Dev3, p, Access.Read);
            Assert.Equal(m is null, r.Faulted);
            if (m is not null) Assert.Equal(s.Process.Mm.Translate(m.Va + (p - m.Iova)), r.PhysicalAddress);
        }
    }
}
