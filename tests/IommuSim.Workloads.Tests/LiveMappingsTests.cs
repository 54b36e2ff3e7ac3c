using IommuSim.Workloads.KernelTrace;

namespace IommuSim.Workloads.Tests;

/// <summary>
/// The live-mapping set a kernel trace is checked and replayed against behaves like a set of
/// pages: iommu_map only succeeds on unmapped IOVAs, and __iommu_unmap removes any page-aligned
/// range, whole mappings, several, or part of one.
/// </summary>
public class LiveMappingsTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Random_maps_and_unmaps_agree_with_a_page_set(int seed)
    {
        var rng = new Random(seed);
        var live = new LiveMappings();
        var pages = new Dictionary<ulong, int>(); // page -> buffer
        var pieces = new Dictionary<int, int>();
        var hits = new List<LiveMappings.Entry>();
        int nextBuffer = 0;
        for (int step = 0; step < 3000; step++)
        {
            ulong a = (ulong)rng.Next(0, 256) << 12;
            ulong b = a + ((ulong)rng.Next(1, 9) << 12);
            bool overlaps = false;
            for (ulong p = a; p < b; p += 0x1000) overlaps |= pages.ContainsKey(p);
            Assert.Equal(overlaps, live.Overlaps(a, b, out _));
            if (rng.Next(2) == 0)
            {
                if (overlaps) continue;
                int id = nextBuffer++;
                live.Add(a, b, id);
                pieces[id] = 1;
                for (ulong p = a; p < b; p += 0x1000) pages[p] = id;
            }
            else
            {
                live.Remove(a, b, (buf, delta) => pieces[buf] += delta);
                for (ulong p = a; p < b; p += 0x1000) pages.Remove(p);
            }
            // The ranges cover exactly the mapped pages, each with its buffer.
            live.Intersecting(0, 1UL << 40, hits);
            var covered = new Dictionary<ulong, int>();
            foreach (var h in hits)
                for (ulong p = h.Start; p < h.End; p += 0x1000) covered.Add(p, h.Buffer);
            Assert.Equal(pages.OrderBy(kv => kv.Key), covered.OrderBy(kv => kv.Key));
            // A buffer's piece count is the number of ranges it still has.
            foreach (var (buf, n) in pieces)
                Assert.Equal(hits.Count(h => h.Buffer == buf), n);
        }
    }
}
