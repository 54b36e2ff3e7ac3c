using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;

namespace IommuSim.Workloads.Generators;

/// <summary>
/// Requests whose 4 KiB page is Zipf-distributed (rank r with probability ∝ 1/r^s): a few hot
/// buffers and a long tail. Ranks map to pages through a fixed seeded permutation so hot pages
/// are scattered over the window, and the offset inside the page is uniform.
/// </summary>
public sealed class ZipfWorkload : WorkloadDriver
{
    private readonly double[] _cdf;
    private readonly int[] _pageOfRank;
    private readonly ulong _baseIova;
    private readonly ulong _slotsPerPage;
    private readonly ulong _pageBytes;

    public ZipfWorkload(WorkloadOptions o, DmaEngine device, Scheduler s, RequestBudget b, SimRandom rng, ulong baseIova)
        : base(o, device, s, b, rng)
    {
        _baseIova = baseIova;
        _pageBytes = Math.Max(4096UL, (ulong)o.Bytes.Bytes);
        long pages = Math.Max(1, o.WorkingSetBytes.Bytes / (long)_pageBytes);
        if (pages > 1 << 26) throw new ArgumentException($"zipf working set of {pages} pages is too large (max 2^26)");
        _slotsPerPage = Math.Max(1, _pageBytes / (ulong)o.Bytes.Bytes);
        _pageOfRank = new int[pages];
        for (int i = 0; i < pages; i++) _pageOfRank[i] = i;
        var perm = rng.Fork("zipf-permutation");
        for (int i = _pageOfRank.Length - 1; i > 0; i--)
        {
            int j = (int)perm.NextBelow((ulong)(i + 1));
            (_pageOfRank[i], _pageOfRank[j]) = (_pageOfRank[j], _pageOfRank[i]);
        }
        // Inverse-CDF sampling by binary search: O(log n) per request (MathNet's Zipf.Sample scans linearly).
        _cdf = new double[pages];
        double sum = 0;
        for (int r = 1; r <= pages; r++)
        {
            sum += Math.Pow(r, -o.ZipfExponent);
            _cdf[r - 1] = sum;
        }
        for (int i = 0; i < _cdf.Length; i++) _cdf[i] /= sum;
    }

    protected override RequestSpec? Next()
    {
        int idx = Array.BinarySearch(_cdf, Random.NextDouble());
        if (idx < 0) idx = ~idx;
        ulong page = (ulong)_pageOfRank[Math.Min(idx, _cdf.Length - 1)];
        ulong iova = _baseIova + page * _pageBytes + Random.NextBelow(_slotsPerPage) * (ulong)Options.Bytes.Bytes;
        return new RequestSpec(iova, (int)Options.Bytes.Bytes, Random.NextDouble() >= Options.ReadFraction, Options.Pasid);
    }
}
