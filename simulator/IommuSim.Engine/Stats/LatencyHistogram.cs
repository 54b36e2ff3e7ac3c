using System.Numerics;
using System.Runtime.CompilerServices;

namespace IommuSim.Engine.Stats;

/// <summary>
/// A log-linear histogram of non-negative integer values (HdrHistogram's layout): values below
/// 256 are counted exactly, larger ones in buckets 1/128 of their power of two wide, so any
/// percentile is within 0.8 % of the exact nearest-rank value. Recording allocates nothing.
/// </summary>
public sealed class LatencyHistogram : IResettable
{
    private const int SubBits = 8;
    private const int SubCount = 1 << SubBits;      // 256 exact values in the first bucket
    private const int HalfSub = SubCount >> 1;      // 128 sub-buckets per later power of two
    private const int BucketCount = (64 - SubBits + 1) * HalfSub + HalfSub;

    private readonly long[] _counts = new long[BucketCount];

    public LatencyHistogram(string name) => Name = name;

    public string Name { get; }
    public long Count { get; private set; }
    public long Min { get; private set; } = long.MaxValue;
    public long Max { get; private set; }
    public double Sum { get; private set; }
    public double Mean => Count == 0 ? 0 : Sum / Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    public void Record(long value)
    {
        if (value < 0) value = 0;
        _counts[IndexOf(value)]++;
        Count++;
        Sum += value;
        if (value < Min) Min = value;
        if (value > Max) Max = value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int IndexOf(long value)
    {
        if (value < SubCount) return (int)value;
        int msb = 63 - BitOperations.LeadingZeroCount((ulong)value);
        int shift = msb - (SubBits - 1);
        return shift * HalfSub + (int)(value >> shift);
    }

    internal static (long Low, long High) BoundsOf(int index)
    {
        if (index < SubCount) return (index, index);
        int shift = index / HalfSub - 1;
        long sub = index - shift * HalfSub;
        if (sub < HalfSub) { shift--; sub += HalfSub; }
        long low = sub << shift;
        return (low, low + (1L << shift) - 1);
    }

    /// <summary>Nearest-rank percentile (p in [0,100]): the value below which p % of samples fall,
    /// reported as the highest value equivalent to the bucket, clipped to the exact max.</summary>
    public long Percentile(double p)
    {
        if (double.IsNaN(p)) throw new ArgumentOutOfRangeException(nameof(p), p, "percentile must be a number in [0, 100]");
        if (Count == 0) return 0;
        if (p <= 0) return Min;
        if (p >= 100) return Max;
        // Rank in decimal arithmetic: in binary floating point p / 100 * Count is off by an ulp for many
        // inputs (7 / 100.0 * 100 = 7.000000000000001), and the ceiling then picks the next rank.
        long rank = (long)Math.Ceiling((decimal)p * Count / 100m);
        if (rank < 1) rank = 1;
        if (rank >= Count) return Max;
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                long high = BoundsOf(i).High;
                return Math.Clamp(high, Min, Max);
            }
        }
        return Max;
    }

    /// <summary>Non-empty buckets as (low, high, count), in ascending order.</summary>
    public IEnumerable<(long Low, long High, long Count)> Buckets()
    {
        for (int i = 0; i < _counts.Length; i++)
        {
            if (_counts[i] == 0) continue;
            var (lo, hi) = BoundsOf(i);
            yield return (lo, hi, _counts[i]);
        }
    }

    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        Sum += other.Sum;
        if (other.Count > 0)
        {
            Min = Math.Min(Min, other.Min);
            Max = Math.Max(Max, other.Max);
        }
    }

    public void Reset()
    {
        Array.Clear(_counts);
        Count = 0;
        Sum = 0;
        Min = long.MaxValue;
        Max = 0;
    }
}
