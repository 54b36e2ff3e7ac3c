using System.Numerics;
using IommuSim.Engine.Time;

namespace IommuSim.Engine.Tests.Time;

public class ClockDomainTests
{
    /// <summary>Reference: edge k is at ceil(k * 10^9 / kHz) ps, computed in arbitrary precision.</summary>
    private static long RefEdge(long kHz, long k)
    {
        BigInteger num = (BigInteger)k * 1_000_000_000;
        BigInteger q = BigInteger.DivRem(num, kHz, out BigInteger rem);
        if (rem > 0) q++;
        return (long)q;
    }

    [Fact]
    public void EdgesOf1500MHzAreExact()
    {
        var c = new ClockDomain("iommu", 1500);
        Assert.Equal(1_500_000, c.FrequencyKHz);
        Assert.Equal(0, c.EdgeTime(0));
        Assert.Equal(667, c.EdgeTime(1));   // 666.67 rounded up
        Assert.Equal(1334, c.EdgeTime(2));  // 1333.33 rounded up
        Assert.Equal(2000, c.EdgeTime(3));  // exact, no accumulated rounding
        Assert.Equal(2667, c.EdgeTime(4));
        Assert.Equal(2_000_000, c.EdgeTime(3_000));
        Assert.Equal(2 * SimTime.Second, c.EdgeTime(3_000_000_000));
    }

    [Fact]
    public void EdgesOf1000MHzAreEveryNanosecond()
    {
        var c = new ClockDomain("pcie", 1000);
        for (long k = 0; k < 1000; k++) Assert.Equal(k * 1000, c.EdgeTime(k));
        Assert.Equal(1000.0, c.PeriodPs);
        Assert.Equal(1000, c.CyclesToPs(1));
    }

    [Fact]
    public void EdgeAfterAlignsToTheNextEdge()
    {
        var c = new ClockDomain("iommu", 1500);
        Assert.Equal(0, c.EdgeAfter(0, 0));
        Assert.Equal(667, c.EdgeAfter(1, 0));
        Assert.Equal(667, c.EdgeAfter(666, 0));
        Assert.Equal(667, c.EdgeAfter(667, 0));   // on an edge: stays
        Assert.Equal(1334, c.EdgeAfter(668, 0));
        Assert.Equal(2000, c.EdgeAfter(1335, 0));
        Assert.Equal(2000, c.EdgeAfter(667, 2));  // 2 cycles after edge 1
        Assert.Equal(2000, c.EdgeAfter(1, 2));    // align to edge 1, then 2 more
        Assert.Equal(3334, c.EdgeAfter(1999, 2)); // align to edge 3 (2000), then 2 more = edge 5 (3333.3 rounded up)
    }

    [Fact]
    public void EdgeAfterIsEdgeTimeOfAlignedIndexPlusCycles()
    {
        var rng = new Random(5);
        foreach (double mhz in new[] { 1500, 1000, 933.33, 2400, 250, 1.001, 3333.333 })
        {
            var c = new ClockDomain("x", mhz);
            for (int i = 0; i < 2000; i++)
            {
                long now = rng.NextInt64(0, 1_000_000_000_000);
                long cycles = rng.Next(0, 1000);
                long aligned = c.EdgeAfter(now, 0);
                long after = c.EdgeAfter(now, cycles);
                Assert.True(aligned >= now);
                Assert.True(aligned - now < (long)Math.Ceiling(c.PeriodPs) + 1, $"{mhz} MHz: {now} aligned to {aligned}");
                Assert.Equal(c.EdgeTime(c.EdgeIndexAtOrAfter(now) + cycles), after);
                Assert.Equal(RefEdge(c.FrequencyKHz, c.EdgeIndexAtOrAfter(now) + cycles), after);
            }
        }
    }

    [Theory]
    [InlineData(1500.0)]
    [InlineData(1000.0)]
    [InlineData(933.33)]
    [InlineData(666.667)]
    [InlineData(3000.0)]
    [InlineData(100.0)]
    [InlineData(1.0)]
    [InlineData(7.919)]
    [InlineData(1_000_000.0)]
    public void EdgeTimeMatchesExactReference(double mhz)
    {
        var c = new ClockDomain("x", mhz);
        long f = c.FrequencyKHz;
        Assert.Equal((long)Math.Round(mhz * 1000), f);
        var rng = new Random((int)f);
        for (long k = 0; k < 5000; k++) Assert.Equal(RefEdge(f, k), c.EdgeTime(k));
        long maxCycle = (long)(1e15 * f / 1e9) + 1; // edges out to ~10^15 ps
        for (int i = 0; i < 5000; i++)
        {
            long k = rng.NextInt64(0, maxCycle);
            Assert.Equal(RefEdge(f, k), c.EdgeTime(k));
        }
    }

    [Theory]
    [InlineData(1500.0)]
    [InlineData(1000.0)]
    [InlineData(933.33)]
    [InlineData(666.667)]
    [InlineData(3000.0)]
    [InlineData(1.0)]
    [InlineData(7.919)]
    [InlineData(1_000_000.0)]
    public void EdgeIndexAtOrAfterIsTheInverseOfEdgeTime(double mhz)
    {
        var c = new ClockDomain("x", mhz);
        var rng = new Random(17);
        long[] smallTimes = Enumerable.Range(0, 3000).Select(i => (long)i).ToArray();
        long[] largeTimes = Enumerable.Range(0, 3000).Select(_ => rng.NextInt64(0, 2_000_000_000_000_000)).ToArray();
        foreach (long t in smallTimes.Concat(largeTimes))
        {
            long k = c.EdgeIndexAtOrAfter(t);
            Assert.True(c.EdgeTime(k) >= t, $"{mhz} MHz t={t}: edge {k} at {c.EdgeTime(k)} is before t");
            if (k > 0) Assert.True(c.EdgeTime(k - 1) < t, $"{mhz} MHz t={t}: edge {k - 1} is already at or after t");
        }

        // Exactly on an edge, the index comes back unchanged, also ~10^15 ps into a run.
        long maxCycle = (long)(1e15 * c.FrequencyKHz / 1e9);
        for (int i = 0; i < 3000; i++)
        {
            long k = i < 1000 ? i : rng.NextInt64(0, maxCycle);
            long t = c.EdgeTime(k);
            Assert.Equal(k, c.EdgeIndexAtOrAfter(t));
            Assert.Equal(k + 1, c.EdgeIndexAtOrAfter(t + 1));
        }
    }

    [Fact]
    public void OddFrequencyStaysExactOverLongRuns()
    {
        var c = new ClockDomain("odd", 933.33);
        Assert.Equal(933_330, c.FrequencyKHz);
        // 933330 cycles take exactly 1 ms; 10^9 / 933330 is not an integer yet multiples of f land exactly.
        Assert.Equal(SimTime.Millisecond, c.EdgeTime(933_330));
        Assert.Equal(1000 * SimTime.Second, c.EdgeTime(933_330L * 1_000_000));
        // one cycle rounds up from 1071.4376... ps
        Assert.Equal(1072, c.EdgeTime(1));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(0.0004)]
    [InlineData(1_000_001.0)]
    [InlineData(double.PositiveInfinity)]
    public void InvalidFrequenciesAreRejected(double mhz)
        => Assert.Throws<ArgumentOutOfRangeException>(() => new ClockDomain("bad", mhz));
}
