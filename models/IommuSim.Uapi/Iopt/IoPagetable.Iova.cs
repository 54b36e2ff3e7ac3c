using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver;

namespace IommuSim.Uapi.Iopt;

/// <summary>IOVA allocation of the IOAS (iopt_alloc_iova, iopt_check_iova): lowest fit in the allowed, unreserved, unused space.</summary>
public sealed partial class IoPagetable
{
    // ---- IOVA allocation ---------------------------------------------------------------------

    /// <summary>
    /// iopt_check_iova: a fixed IOVA must be aligned, must not overflow, must not touch a reserved
    /// range (EINVAL) nor an existing area (EEXIST). Allowed ranges are not consulted.
    /// </summary>
    public Errno CheckIova(ulong iova, ulong length)
    {
        if ((iova & (IovaAlignment - 1)) != 0) return Errno.EINVAL;
        if (length == 0) return Errno.EINVAL;
        ulong last = iova + (length - 1);
        if (last < iova) return Errno.EOVERFLOW;
        if (ReservedIntersects(iova, last)) return Errno.EINVAL;
        if (FirstArea(iova, last) is not null) return Errno.EEXIST;
        return Errno.OK;
    }

    /// <summary>
    /// iopt_alloc_iova: the lowest IOVA that keeps the user address's offset within its page and
    /// its natural alignment (up to 2 MiB), inside the allowed ranges (or [PAGE_SIZE,
    /// ULONG_MAX−PAGE_SIZE]), in a hole of reserved ∪ mapped.
    /// </summary>
    public Errno AllocIova(ulong addr, ulong length, out ulong iova)
    {
        iova = 0;
        if (length == 0 || length >= ulong.MaxValue / 2) return Errno.EOVERFLOW;
        ulong pageOffset = addr % PageSize;
        ulong align = RoundUpPowerOfTwo(length);
        if (addr != 0) align = Math.Min(align, addr & (~addr + 1));
        if (align >= HugePageSize) align = HugePageSize;
        if (align < IovaAlignment) return Errno.EINVAL;

        const ulong winStart = PageSize, winLast = ulong.MaxValue - PageSize;
        var windows = new List<(ulong Start, ulong Last)>();
        if (_allowed.Count == 0) windows.Add((winStart, winLast));
        else
        {
            foreach (var a in _allowed)
            {
                ulong s = Math.Max(a.Start, winStart), l = Math.Min(a.Last, winLast);
                if (s <= l) windows.Add((s, l));
            }
        }

        var used = UsedSpans();
        foreach (var (ws, wl) in windows)
        {
            ulong wstart = ws;
            if (!FitsRange(ref wstart, wl, length, align, pageOffset)) continue;
            // Holes of (reserved ∪ areas) inside [wstart, wl], ascending.
            ulong holeStart = wstart;
            foreach (var (us, ul) in used)
            {
                if (ul < holeStart) continue;
                if (us > wl) break;
                if (us > holeStart)
                {
                    ulong s = holeStart;
                    if (FitsRange(ref s, us - 1, length, align, pageOffset)) { iova = s; return Errno.OK; }
                }
                if (ul >= wl) { holeStart = wl; goto nextWindow; }
                holeStart = Math.Max(holeStart, ul + 1);
            }
            {
                ulong s = holeStart;
                if (FitsRange(ref s, wl, length, align, pageOffset)) { iova = s; return Errno.OK; }
            }
        nextWindow:;
        }
        return Errno.ENOSPC;
    }

    /// <summary>__alloc_iova_check_range: align up, keep the page offset, and check the fit.</summary>
    private static bool FitsRange(ref ulong start, ulong last, ulong length, ulong align, ulong pageOffset)
    {
        ulong aligned = start + (align - 1);
        if (aligned < start) return false;
        aligned &= ~(align - 1);
        aligned |= pageOffset;
        if (aligned >= last || last - aligned < length - 1) return false;
        start = aligned;
        return true;
    }

    /// <summary>Merged, sorted spans of reserved ranges and areas.</summary>
    private List<(ulong Start, ulong Last)> UsedSpans()
    {
        var all = new List<(ulong Start, ulong Last)>(_reserved.Count + _areas.Count);
        foreach (var r in _reserved) all.Add((r.Start, r.Last));
        foreach (var a in _areas) all.Add((a.Iova, a.Last));
        return Merge(all);
    }

    private static List<(ulong Start, ulong Last)> Merge(List<(ulong Start, ulong Last)> spans)
    {
        spans.Sort((x, y) => x.Start.CompareTo(y.Start));
        var merged = new List<(ulong Start, ulong Last)>(spans.Count);
        foreach (var s in spans)
        {
            if (merged.Count > 0 && (merged[^1].Last == ulong.MaxValue || s.Start <= merged[^1].Last + 1))
            {
                if (s.Last > merged[^1].Last) merged[^1] = (merged[^1].Start, s.Last);
            }
            else merged.Add(s);
        }
        return merged;
    }

    private static ulong RoundUpPowerOfTwo(ulong v)
    {
        if (v <= 1) return 1;
        return 1UL << (64 - System.Numerics.BitOperations.LeadingZeroCount(v - 1));
    }

    /// <summary>IOAS_IOVA_RANGES: the holes of the reserved ranges over [0, ULONG_MAX].</summary>
    public List<(ulong Start, ulong Last)> UsableRanges()
    {
        var res = new List<(ulong Start, ulong Last)>();
        foreach (var r in _reserved) res.Add((r.Start, r.Last));
        var merged = Merge(res);
        var holes = new List<(ulong Start, ulong Last)>();
        ulong next = 0;
        bool done = false;
        foreach (var (s, l) in merged)
        {
            if (s > next) holes.Add((next, s - 1));
            if (l == ulong.MaxValue) { done = true; break; }
            next = l + 1;
        }
        if (!done) holes.Add((next, ulong.MaxValue));
        return holes;
    }

}
