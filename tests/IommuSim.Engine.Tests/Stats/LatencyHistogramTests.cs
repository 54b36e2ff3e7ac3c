using IommuSim.Engine.Stats;

namespace IommuSim.Engine.Tests.Stats;

public class LatencyHistogramTests
{
    private static readonly double[] Percentiles =
        [0.1, 1, 5, 7, 10, 25, 33.3, 50, 57, 70, 75, 90, 95, 99, 99.9, 99.99, 100];

    /// <summary>Nearest-rank percentile on a sorted array: the smallest value with at least p % of samples at or below it.</summary>
    private static long Reference(long[] sorted, double p)
    {
        if (p <= 0) return sorted[0];
        decimal exactRank = Math.Ceiling((decimal)p / 100m * sorted.Length);
        long rank = Math.Clamp((long)exactRank, 1, sorted.Length);
        return sorted[rank - 1];
    }

    private static long[] Sample(string distribution, int n, int seed)
    {
        var rng = new Random(seed);
        var values = new long[n];
        for (int i = 0; i < n; i++)
        {
            double u = 1.0 - rng.NextDouble(); // (0, 1]
            double v = distribution switch
            {
                "uniform" => rng.NextInt64(0, 10_000_000),
                "exponential" => -Math.Log(u) * 50_000,
                // lognormal via Box-Muller, median ~ 20 ns in ps, sigma 1.5
                "lognormal" => Math.Exp(Math.Log(20_000) + 1.5 * Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * rng.NextDouble())),
                // Pareto with alpha 1.1: very heavy tail, spans many powers of two
                "heavytail" => 1000 * Math.Pow(u, -1 / 1.1),
                "small" => rng.Next(0, 256),
                _ => throw new ArgumentException(distribution),
            };
            values[i] = (long)Math.Min(v, 4e18);
        }
        return values;
    }

    [Theory]
    [InlineData("uniform", 100_000, 1)]
    [InlineData("exponential", 100_000, 2)]
    [InlineData("lognormal", 100_000, 3)]
    [InlineData("heavytail", 100_000, 4)]
    [InlineData("uniform", 37, 5)]
    [InlineData("exponential", 1001, 6)]
    [InlineData("lognormal", 10, 7)]
    [InlineData("heavytail", 3, 8)]
    public void PercentilesAreWithinOnePercentOfNearestRank(string distribution, int n, int seed)
    {
        long[] values = Sample(distribution, n, seed);
        var h = new LatencyHistogram("t");
        foreach (long v in values) h.Record(v);
        long[] sorted = (long[])values.Clone();
        Array.Sort(sorted);

        Assert.Equal(n, h.Count);
        Assert.Equal(sorted[0], h.Min);
        Assert.Equal(sorted[^1], h.Max);
        Assert.Equal(values.Sum(v => (double)v) / n, h.Mean, 6);
        Assert.Equal(sorted[0], h.Percentile(0));
        Assert.Equal(sorted[^1], h.Percentile(100));

        foreach (double p in Percentiles)
        {
            long expected = Reference(sorted, p);
            long actual = h.Percentile(p);
            // the histogram reports the top of the bucket: never below the true value, at most 1/128 above
            Assert.True(actual >= expected, $"{distribution} p{p}: {actual} < reference {expected}");
            Assert.True(actual <= expected + expected / 100,
                $"{distribution} p{p}: {actual} more than 1 % above reference {expected}");
        }
    }

    [Fact]
    public void PercentilesAreExactForValuesBelow256()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            long[] values = Sample("small", 1 + seed * 37, seed);
            var h = new LatencyHistogram("t");
            foreach (long v in values) h.Record(v);
            Array.Sort(values);
            foreach (double p in Percentiles.Concat([12.5, 40, 60, 80, 0.5, 2, 3, 6, 14, 28, 29, 56, 58]))
                Assert.True(Reference(values, p) == h.Percentile(p), $"seed {seed} n={values.Length} p{p}: expected {Reference(values, p)}, got {h.Percentile(p)}");
        }
    }

    [Fact]
    public void PercentileOfOneToHundredIsTheRank()
    {
        var h = new LatencyHistogram("t");
        for (int v = 1; v <= 100; v++) h.Record(v);
        // every integer p of 1..100 samples is its own nearest rank; p * 0.01 is inexact in binary for many p
        for (int p = 1; p <= 100; p++) Assert.True(p == h.Percentile(p), $"p{p} gave {h.Percentile(p)}");
        Assert.Equal(1, h.Percentile(0.5));
        Assert.Equal(50, h.Percentile(49.5));
    }

    [Fact]
    public void OutOfRangePercentilesClampAndNaNThrows()
    {
        var h = new LatencyHistogram("t");
        Assert.Equal(0, h.Percentile(50)); // empty
        h.Record(3);
        h.Record(1000);
        Assert.Equal(3, h.Percentile(-5));
        Assert.Equal(1000, h.Percentile(250));
        Assert.Equal(1000, h.Percentile(double.PositiveInfinity));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Percentile(double.NaN));
    }

    [Fact]
    public void BucketsAreContiguousAndCoverEveryNonNegativeLong()
    {
        var h = new LatencyHistogram("t");
        long expectedLow = 0;
        int buckets = 0;
        while (true)
        {
            h.Reset();
            h.Record(expectedLow);
            var (low, high, count) = Assert.Single(h.Buckets());
            Assert.Equal(expectedLow, low);
            Assert.Equal(1, count);
            Assert.True(high >= low);
            if (low < 256) Assert.Equal(low, high);
            else Assert.True(high - low + 1 <= low / 128, $"bucket [{low},{high}] wider than 1/128 of its value");

            // both ends of the bucket land in the same bucket (checked on a sample, to keep the test fast)
            if (buckets % 5 == 0 || low < 1024)
            {
                h.Reset();
                h.Record(high);
                Assert.Equal((low, high, 1L), Assert.Single(h.Buckets()));
            }

            buckets++;
            if (high == long.MaxValue) break;
            expectedLow = high + 1;
        }
        Assert.Equal(256 + (63 - 8) * 128, buckets);
    }

    [Fact]
    public void BucketsListNonEmptyBucketsInOrderWithTheirCounts()
    {
        var h = new LatencyHistogram("t");
        var rng = new Random(11);
        var values = Sample("heavytail", 20_000, 12).Concat(Sample("small", 1000, 13)).ToArray();
        rng.Shuffle(values);
        foreach (long v in values) h.Record(v);
        var b = h.Buckets().ToList();
        Assert.Equal(values.Length, b.Sum(x => x.Count));
        Assert.All(b, x => Assert.True(x.Count > 0));
        for (int i = 1; i < b.Count; i++) Assert.True(b[i].Low > b[i - 1].High);
        long[] sorted = (long[])values.Clone();
        Array.Sort(sorted);
        foreach (var (low, high, count) in b)
        {
            int from = LowerBound(sorted, low), to = LowerBound(sorted, high + 1);
            Assert.Equal(to - from, count);
        }
    }

    private static int LowerBound(long[] sorted, long value)
    {
        int i = Array.BinarySearch(sorted, value);
        if (i < 0) return ~i;
        while (i > 0 && sorted[i - 1] == value) i--;
        return i;
    }

    [Fact]
    public void ExtremeValuesAreRecorded()
    {
        var h = new LatencyHistogram("t");
        h.Record(long.MaxValue);
        h.Record(0);
        h.Record(-5); // clamped to 0
        Assert.Equal(3, h.Count);
        Assert.Equal(0, h.Min);
        Assert.Equal(long.MaxValue, h.Max);
        Assert.Equal(long.MaxValue, h.Percentile(100));
        Assert.Equal(0, h.Percentile(50));
        Assert.Equal(2, h.Buckets().Count());
    }

    [Fact]
    public void ResetClearsEverything()
    {
        var h = new LatencyHistogram("t");
        foreach (long v in Sample("lognormal", 1000, 1)) h.Record(v);
        h.Reset();
        Assert.Equal(0, h.Count);
        Assert.Equal(0, h.Sum);
        Assert.Equal(0, h.Mean);
        Assert.Equal(0, h.Max);
        Assert.Equal(long.MaxValue, h.Min);
        Assert.Equal(0, h.Percentile(50));
        Assert.Empty(h.Buckets());

        h.Record(300);
        h.Record(10);
        Assert.Equal(2, h.Count);
        Assert.Equal(10, h.Min);
        Assert.Equal(300, h.Max);
        Assert.Equal(10, h.Percentile(50));
        Assert.Equal(300, h.Percentile(99));
    }

    [Fact]
    public void ResetThroughTheRegistry()
    {
        var reg = new StatsRegistry();
        var a = reg.Register(new LatencyHistogram("a"));
        var b = reg.Register(new LatencyHistogram("b"));
        a.Record(5);
        b.Record(7);
        reg.ResetAll();
        Assert.Equal(0, a.Count);
        Assert.Equal(0, b.Count);
    }

    [Fact]
    public void AddMergesCountsAndExtremes()
    {
        long[] x = Sample("exponential", 5000, 21), y = Sample("heavytail", 3000, 22);
        var a = new LatencyHistogram("a");
        var b = new LatencyHistogram("b");
        var all = new LatencyHistogram("all");
        foreach (long v in x) { a.Record(v); all.Record(v); }
        foreach (long v in y) { b.Record(v); all.Record(v); }
        a.Add(b);
        Assert.Equal(all.Count, a.Count);
        Assert.Equal(all.Min, a.Min);
        Assert.Equal(all.Max, a.Max);
        Assert.Equal(all.Sum, a.Sum, 6);
        Assert.Equal(all.Buckets(), a.Buckets());
        foreach (double p in Percentiles) Assert.Equal(all.Percentile(p), a.Percentile(p));

        var empty = new LatencyHistogram("e");
        empty.Add(new LatencyHistogram("e2"));
        Assert.Equal(long.MaxValue, empty.Min);
        Assert.Equal(0, empty.Count);
        empty.Add(b);
        Assert.Equal(b.Min, empty.Min);
    }
}
