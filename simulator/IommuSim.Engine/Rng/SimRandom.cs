using System.Runtime.CompilerServices;

namespace IommuSim.Engine.Rng;

/// <summary>
/// xoshiro256** — a small, fast, allocation-free generator. Every source of randomness in a run
/// derives from the run seed through <see cref="Fork"/>, so results never depend on the host,
/// the thread count or the order components were created in beyond their fixed stream ids.
/// </summary>
public sealed class SimRandom
{
    private ulong _s0, _s1, _s2, _s3;

    public SimRandom(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    /// <summary>An independent stream for a named component: same (seed, stream) → same numbers.</summary>
    public static SimRandom ForStream(ulong seed, string stream)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in stream) h = (h ^ c) * 1099511628211UL;
        return new SimRandom(seed ^ h);
    }

    public SimRandom Fork(string stream) => ForStream(NextU64(), stream);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextU64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public double NextDouble() => (NextU64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, n) without modulo bias (Lemire).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public ulong NextBelow(ulong n)
    {
        if (n == 0) return 0;
        UInt128 m = (UInt128)NextU64() * n;
        ulong low = (ulong)m;
        if (low < n)
        {
            ulong threshold = (0 - n) % n;
            while (low < threshold)
            {
                m = (UInt128)NextU64() * n;
                low = (ulong)m;
            }
        }
        return (ulong)(m >> 64);
    }

    /// <summary>Exponential with the given mean.</summary>
    public double NextExponential(double mean) => -mean * Math.Log(1.0 - NextDouble());

    /// <summary>Adapter for libraries (MathNet) that take a System.Random.</summary>
    public System.Random AsSystemRandom() => new Adapter(this);

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private sealed class Adapter(SimRandom r) : System.Random
    {
        protected override double Sample() => r.NextDouble();
        public override double NextDouble() => r.NextDouble();
        public override int Next() => (int)(r.NextU64() >> 33);
        public override int Next(int maxValue) => (int)r.NextBelow((ulong)Math.Max(0, maxValue));
        public override int Next(int minValue, int maxValue) => minValue + (int)r.NextBelow((ulong)((long)maxValue - minValue));
        public override void NextBytes(Span<byte> buffer)
        {
            for (int i = 0; i < buffer.Length; i++) buffer[i] = (byte)r.NextU64();
        }
    }
}
