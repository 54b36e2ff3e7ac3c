using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver;

namespace IommuSim.Uapi.Iopt;

/// <summary>
/// struct io_pagetable: the IOVA space of one IOAS. Holds the areas (user mappings), the reserved
/// ranges (domain apertures, device MSI windows), the allowed ranges (IOAS_ALLOW_IOVAS) and the
/// domains the areas are mirrored into. Every rule here follows drivers/iommu/iommufd/io_pagetable.c:
/// areas are whole (unmap never splits), reservations and mappings never overlap, and the IOVA
/// alignment is the largest minimum page size of the attached domains.
/// </summary>
public sealed class IoPagetable
{
    public const ulong PageSize = 4096;
    public const ulong HugePageSize = 2UL << 20;

    private readonly List<IoptArea> _areas = [];            // sorted by Iova, non-overlapping
    private readonly List<IoptReserved> _reserved = [];
    private List<(ulong Start, ulong Last)> _allowed = [];  // sorted, non-overlapping
    private readonly List<VtdPagingDomain> _domains = [];
    private readonly List<Iommufd.IommufdAccess> _accesses = [];
    private readonly List<(ulong Va, ulong Pa, ulong Length)> _runs = [];

    public IReadOnlyList<IoptArea> Areas => _areas;
    public IReadOnlyList<IoptReserved> Reserved => _reserved;
    public IReadOnlyList<(ulong Start, ulong Last)> Allowed => _allowed;
    public IReadOnlyList<VtdPagingDomain> Domains => _domains;
    public IReadOnlyList<Iommufd.IommufdAccess> Accesses => _accesses;

    /// <summary>iopt->iova_alignment: 1 for an IOAS without domains.</summary>
    public ulong IovaAlignment { get; private set; } = 1;

    /// <summary>iopt->disable_large_pages (OPTION HUGE_PAGES=0, or VFIO type1 v1).</summary>
    public bool DisableLargePages { get; private set; }

    // ---- lookup ------------------------------------------------------------------------------

    /// <summary>Index of the first area whose last byte is ≥ <paramref name="start"/>.</summary>
    private int FirstIndexFrom(ulong start)
    {
        int lo = 0, hi = _areas.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (_areas[mid].Last < start) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    /// <summary>iopt_area_iter_first: the lowest area intersecting [start, last], or null.</summary>
    public IoptArea? FirstArea(ulong start, ulong last)
    {
        int i = FirstIndexFrom(start);
        return i < _areas.Count && _areas[i].Iova <= last ? _areas[i] : null;
    }

    public IEnumerable<IoptArea> AreasIn(ulong start, ulong last)
    {
        for (int i = FirstIndexFrom(start); i < _areas.Count && _areas[i].Iova <= last; i++) yield return _areas[i];
    }

    public bool ReservedIntersects(ulong start, ulong last)
    {
        foreach (var r in _reserved)
            if (r.Start <= last && start <= r.Last) return true;
        return false;
    }

    private bool AllowedIntersects(ulong start, ulong last)
    {
        foreach (var a in _allowed)
            if (a.Start <= last && start <= a.Last) return true;
        return false;
    }

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

    // ---- map / copy / unmap --------------------------------------------------------------------

    /// <summary>One piece of a map request: bytes of <paramref name="Pages"/> from <paramref name="StartByte"/>.</summary>
    public readonly record struct PagesElement(IoptPages Pages, ulong StartByte, ulong Length);

    /// <summary>
    /// iopt_map_pages: places the elements one after another from the IOVA (allocated when
    /// <paramref name="allocIova"/>), then pins them and mirrors them into every domain. Fails
    /// atomically.
    /// </summary>
    public Errno MapPages(IReadOnlyList<PagesElement> elements, ref ulong iova, Access prot, bool allocIova)
    {
        ulong length = 0;
        foreach (var e in elements) length += e.Length;
        if (length == 0) return Errno.EINVAL;
        if ((length & (IovaAlignment - 1)) != 0) return Errno.EINVAL;

        Errno rc = allocIova ? AllocIova(elements[0].Pages.SourceAddress + elements[0].StartByte, length, out iova) : CheckIova(iova, length);
        if (rc != Errno.OK) return rc;

        var created = new List<IoptArea>(elements.Count);
        ulong cur = iova;
        foreach (var e in elements)
        {
            var area = new IoptArea(e.Pages, e.StartByte, cur, e.Length, prot);
            if ((prot & Access.Write) != 0 && !e.Pages.Writable) return Errno.EPERM;
            if ((area.PageOffset & (IovaAlignment - 1)) != 0) return Errno.EINVAL;
            created.Add(area);
            cur += e.Length;
        }

        // Pinning happens now only when a domain needs the pages; otherwise at attach.
        if (_domains.Count > 0)
        {
            var mapped = new List<IoptArea>();
            foreach (var a in created)
            {
                rc = FillDomains(a, _domains);
                if (rc != Errno.OK)
                {
                    foreach (var m in mapped) UnfillDomains(m, _domains);
                    return rc;
                }
                mapped.Add(a);
            }
        }
        foreach (var a in created) InsertArea(a);
        return Errno.OK;
    }

    private void InsertArea(IoptArea a) => _areas.Insert(FirstIndexFrom(a.Iova), a);

    /// <summary>Pins an area (charging RLIMIT_MEMLOCK: ENOMEM) and maps it into every domain of the IOAS; nothing
    /// is pinned or mapped when either fails.</summary>
    private Errno FillDomains(IoptArea a, IReadOnlyList<VtdPagingDomain> domains)
    {
        Errno rc = a.Pages.Pin(a.StartByte, a.Length);
        if (rc != Errno.OK) return rc;
        foreach (var d in domains)
        {
            rc = FillOne(a, d);
            if (rc != Errno.OK)
            {
                a.Pages.Unpin(a.StartByte, a.Length);
                return rc; // the pages' backing is checked before any domain is written
            }
        }
        a.InDomains = true;
        return Errno.OK;
    }

    /// <summary>Unmaps an area from every domain (each unmap flushes and waits) and unpins its pages.</summary>
    private void UnfillDomains(IoptArea a, IReadOnlyList<VtdPagingDomain> domains)
    {
        if (!a.InDomains) return;
        foreach (var d in domains) d.Unmap(a.Iova, a.Length);
        a.Pages.Unpin(a.StartByte, a.Length);
        a.InDomains = false;
    }

    /// <summary>
    /// iopt_get_pages: the pages behind [iova, iova+length), which must be covered by contiguous
    /// areas (ENOENT otherwise); any byte offset and sub-range is allowed.
    /// </summary>
    public Errno GetPages(ulong iova, ulong length, List<PagesElement> elements)
    {
        elements.Clear();
        if (length == 0) return Errno.EINVAL;
        ulong last = iova + (length - 1);
        if (last < iova) return Errno.EOVERFLOW;
        ulong cur = iova;
        foreach (var a in AreasIn(iova, last))
        {
            if (a.Iova > cur) break;
            ulong take = Math.Min(a.Last, last) - cur + 1;
            elements.Add(new PagesElement(a.Pages, a.StartByte + (cur - a.Iova), take));
            if (Math.Min(a.Last, last) == last) return Errno.OK;
            cur = a.Last + 1;
        }
        elements.Clear();
        return Errno.ENOENT;
    }

    /// <summary>
    /// iopt_unmap_iova_range: removes every area inside [start, last], lowest first. An area that
    /// sticks out of the range stops the walk with ENOENT (areas already removed stay removed, as
    /// in the kernel); nothing removed is ENOENT too. Pages an in-kernel access pinned do not block
    /// the unmap: the accesses are told to unpin them (iommufd_access_notify_unmap) and the walk
    /// retries; only an access that does not let go would be EBUSY.
    /// </summary>
    public Errno UnmapRange(ulong start, ulong last, out ulong unmapped)
    {
        unmapped = 0;
        while (FirstArea(start, last) is { } a)
        {
            if (a.Iova < start || a.Last > last) return Errno.ENOENT;
            if (a.NumAccesses > 0)
            {
                foreach (var acc in _accesses.ToArray()) acc.NotifyUnmap(a.Iova, a.Last);
                if (a.NumAccesses > 0) return Errno.EBUSY;
            }
            UnfillDomains(a, _domains);
            _areas.Remove(a);
            unmapped += a.Length;
        }
        return unmapped == 0 ? Errno.ENOENT : Errno.OK;
    }

    /// <summary>
    /// Pins (or unpins) the pages of every area covering [start, last] for an in-kernel access
    /// (iommufd_access_pin_pages → iopt_area_add_access): the range must be covered by contiguous
    /// areas, else ENOENT; the area counts the access (num_accesses) until it unpins.
    /// </summary>
    public Errno LockRange(ulong start, ulong last, int delta)
    {
        ulong next = start;
        var hit = new List<IoptArea>();
        foreach (var a in AreasIn(start, last))
        {
            if (a.Iova > next) return Errno.ENOENT;
            hit.Add(a);
            if (a.Last >= last) { next = last; break; }
            next = a.Last + 1;
        }
        if (hit.Count == 0 || hit[^1].Last < last) return Errno.ENOENT;
        foreach (var a in hit)
        {
            if (delta < 0 && a.NumAccesses == 0) return Errno.EINVAL;
        }
        // An access pins the pages it covers (charging RLIMIT_MEMLOCK for pages not pinned yet).
        for (int i = 0; i < hit.Count; i++)
        {
            var (from, length) = Piece(hit[i], start, last);
            if (delta < 0)
            {
                hit[i].Pages.Unpin(from, length);
                continue;
            }
            // pin_user_pages()/memfd_pin_folios() as for a domain: unbacked memory is EFAULT, a read-only
            // mapping pinned for a WRITEABLE area EFAULT, a bad file range EINVAL.
            Errno rc = hit[i].Pages.Resolve(from, length, hit[i].Pages.Writable, _runs);
            if (rc == Errno.OK) rc = hit[i].Pages.Pin(from, length);
            if (rc != Errno.OK)
            {
                for (int j = 0; j < i; j++)
                {
                    var (f, l) = Piece(hit[j], start, last);
                    hit[j].Pages.Unpin(f, l);
                }
                return rc;
            }
        }
        foreach (var a in hit) a.NumAccesses += delta;
        return Errno.OK;

        // The bytes of the area's pages that [start, last] covers.
        static (ulong StartByte, ulong Length) Piece(IoptArea a, ulong start, ulong last)
        {
            ulong s = Math.Max(start, a.Iova), e = Math.Min(last, a.Last);
            return (a.StartByte + (s - a.Iova), e - s + 1);
        }
    }

    /// <summary>iopt_unmap_iova: length 0 is EINVAL, wrap-around EOVERFLOW.</summary>
    public Errno UnmapIova(ulong iova, ulong length, out ulong unmapped)
    {
        unmapped = 0;
        if (length == 0) return Errno.EINVAL;
        ulong last = iova + (length - 1);
        if (last < iova) return Errno.EOVERFLOW;
        return UnmapRange(iova, last, out unmapped);
    }

    /// <summary>iopt_unmap_all: succeeds on an empty IOAS.</summary>
    public Errno UnmapAll(out ulong unmapped)
    {
        Errno rc = UnmapRange(0, ulong.MaxValue, out unmapped);
        return rc == Errno.ENOENT ? Errno.OK : rc;
    }

    /// <summary>
    /// iopt_cut_iova (VFIO type1 v1 only): splits the areas that contain each IOVA so that it
    /// becomes an area boundary. A cut must be aligned to the IOAS alignment (and the page size
    /// when the area is in a domain), and an area mapped with large pages, or one an access has pinned, cannot be
    /// cut (EINVAL).
    /// </summary>
    public Errno CutIova(ReadOnlySpan<ulong> iovas)
    {
        foreach (ulong cut in iovas)
        {
            if (FirstArea(cut, cut) is not { } a || a.Iova == cut) continue;
            ulong first = cut - a.Iova;
            if ((cut & (IovaAlignment - 1)) != 0) return Errno.EINVAL;
            // iopt_area_split: "Splitting is not permitted if an access exists" (its pins are per area).
            if (a.NumAccesses > 0) return Errno.EINVAL;
            if (a.InDomains && ((cut % PageSize) != 0 || !DisableLargePages)) return Errno.EINVAL;
            var lhs = new IoptArea(a.Pages, a.StartByte, a.Iova, first, a.Prot) { InDomains = a.InDomains };
            var rhs = new IoptArea(a.Pages, a.StartByte + first, cut, a.Length - first, a.Prot) { InDomains = a.InDomains };
            int i = _areas.IndexOf(a);
            _areas[i] = lhs;
            _areas.Insert(i + 1, rhs);
        }
        return Errno.OK;
    }

    // ---- reservations and allowed ranges --------------------------------------------------------

    /// <summary>iopt_reserve_iova: EADDRINUSE when an area or an allowed range is in the way.</summary>
    public Errno ReserveIova(ulong start, ulong last, object owner)
    {
        if (FirstArea(start, last) is not null) return Errno.EADDRINUSE;
        if (AllowedIntersects(start, last)) return Errno.EADDRINUSE;
        _reserved.Add(new IoptReserved(start, last, owner));
        return Errno.OK;
    }

    /// <summary>iopt_remove_reserved_iova: drops every range <paramref name="owner"/> reserved.</summary>
    public void RemoveReserved(object owner) => _reserved.RemoveAll(r => ReferenceEquals(r.Owner, owner));

    /// <summary>
    /// iopt_set_allow_iova: replaces the allowed list atomically. Ranges must be start &lt; last
    /// and must not overlap each other (EINVAL) nor a reserved range (EADDRINUSE).
    /// </summary>
    public Errno SetAllowIova(IReadOnlyList<(ulong Start, ulong Last)> ranges)
    {
        var sorted = new List<(ulong Start, ulong Last)>(ranges);
        foreach (var (s, l) in sorted)
            if (s >= l) return Errno.EINVAL;
        sorted.Sort((x, y) => x.Start.CompareTo(y.Start));
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Start <= sorted[i - 1].Last) return Errno.EINVAL;
        foreach (var (s, l) in sorted)
            if (ReservedIntersects(s, l)) return Errno.EADDRINUSE;
        _allowed = sorted;
        return Errno.OK;
    }

    // ---- domains ---------------------------------------------------------------------------------

    /// <summary>
    /// iopt_table_add_domain: reserves what lies outside the domain's aperture, raises the IOVA
    /// alignment to the domain's smallest page (EADDRINUSE when areas are not aligned to it), then
    /// pins every area and maps it into the new domain (EFAULT for unbacked memory). Atomic.
    /// </summary>
    public Errno AddDomain(VtdPagingDomain domain)
    {
        if (_domains.Contains(domain)) return Errno.OK;
        ulong minPage = domain.PgsizeBitmap & (~domain.PgsizeBitmap + 1);
        if (minPage > PageSize) return Errno.EINVAL;
        Errno rc = domain.ApertureLast == ulong.MaxValue ? Errno.OK : ReserveIova(domain.ApertureLast + 1, ulong.MaxValue, domain);
        if (rc != Errno.OK) return rc;

        ulong newAlign = Math.Max(IovaAlignment, minPage);
        rc = CheckAlignment(newAlign);
        if (rc != Errno.OK) { RemoveReserved(domain); return rc; }

        // The first domain pins every area (charging RLIMIT_MEMLOCK); later ones find them pinned.
        var filled = new List<IoptArea>();
        foreach (var a in _areas)
        {
            bool pinHere = !a.InDomains;
            rc = pinHere ? a.Pages.Pin(a.StartByte, a.Length) : Errno.OK;
            if (rc == Errno.OK)
            {
                rc = FillOne(a, domain);
                if (rc != Errno.OK && pinHere) a.Pages.Unpin(a.StartByte, a.Length);
            }
            if (rc != Errno.OK)
            {
                foreach (var f in filled)
                {
                    domain.Unmap(f.Iova, f.Length);
                    if (!f.InDomains) f.Pages.Unpin(f.StartByte, f.Length);
                }
                RemoveReserved(domain);
                return rc;
            }
            filled.Add(a);
        }
        foreach (var a in _areas) a.InDomains = true;
        _domains.Add(domain);
        IovaAlignment = newAlign;
        return Errno.OK;
    }

    private Errno FillOne(IoptArea a, VtdPagingDomain d)
    {
        Errno rc = a.Pages.Resolve(a.StartByte, a.Length, (a.Prot & Access.Write) != 0, _runs);
        if (rc != Errno.OK) return rc;
        ulong iova = a.Iova;
        foreach (var (_, pa, len) in _runs)
        {
            d.Map(iova, pa, len, a.Prot, !DisableLargePages);
            iova += len;
        }
        return Errno.OK;
    }

    /// <summary>iopt_table_remove_domain: unmaps everything from it, drops its reservations, lowers the alignment.</summary>
    public void RemoveDomain(VtdPagingDomain domain)
    {
        if (!_domains.Remove(domain)) return;
        foreach (var a in _areas)
        {
            domain.Unmap(a.Iova, a.Length);
            if (_domains.Count == 0 && a.InDomains) a.Pages.Unpin(a.StartByte, a.Length); // the last domain held the pins
            a.InDomains = _domains.Count > 0;
        }
        RemoveReserved(domain);
        RecalculateAlignment();
    }

    /// <summary>iopt_calculate_iova_alignment: the largest of the domains' smallest pages, PAGE_SIZE with large pages
    /// disabled, and each access's alignment (PAGE_SIZE: the model's accesses pin pages).</summary>
    private ulong RequiredAlignment()
    {
        ulong align = 1;
        foreach (var d in _domains) align = Math.Max(align, d.PgsizeBitmap & (~d.PgsizeBitmap + 1));
        if (DisableLargePages) align = Math.Max(align, PageSize);
        if (_accesses.Count > 0) align = Math.Max(align, PageSize);
        return align;
    }

    /// <summary>iopt_add_access: the access joins the IOAS and the alignment is recalculated (EADDRINUSE, and the
    /// access is not added, when existing areas do not meet it).</summary>
    internal Errno AddAccess(Iommufd.IommufdAccess access)
    {
        _accesses.Add(access);
        Errno rc = RecalculateAlignment();
        if (rc != Errno.OK) _accesses.Remove(access);
        return rc;
    }

    /// <summary>iopt_remove_access: the alignment may fall again.</summary>
    internal void RemoveAccess(Iommufd.IommufdAccess access)
    {
        if (_accesses.Remove(access)) RecalculateAlignment();
    }

    /// <summary>iopt_check_iova_alignment: every area's IOVA, length and page offset must be aligned.</summary>
    private Errno CheckAlignment(ulong align)
    {
        foreach (var a in _areas)
            if (((a.Iova | a.Length | a.PageOffset) & (align - 1)) != 0) return Errno.EADDRINUSE;
        return Errno.OK;
    }

    private Errno RecalculateAlignment()
    {
        ulong align = RequiredAlignment();
        if (align > IovaAlignment)
        {
            Errno rc = CheckAlignment(align);
            if (rc != Errno.OK) return rc;
        }
        IovaAlignment = align;
        return Errno.OK;
    }

    /// <summary>
    /// iopt_disable_large_pages: not allowed once both domains and areas exist (the existing
    /// mappings may use large pages), EADDRINUSE when the alignment rise conflicts with areas.
    /// </summary>
    public Errno SetDisableLargePages()
    {
        if (DisableLargePages) return Errno.OK;
        if (_domains.Count > 0 && _areas.Count > 0) return Errno.EINVAL;
        DisableLargePages = true;
        Errno rc = RecalculateAlignment();
        if (rc != Errno.OK) DisableLargePages = false;
        return rc;
    }

    /// <summary>iopt_enable_large_pages: always succeeds (the alignment can only fall).</summary>
    public void SetEnableLargePages()
    {
        DisableLargePages = false;
        RecalculateAlignment();
    }
}
