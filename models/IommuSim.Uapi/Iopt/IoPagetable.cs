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
public sealed partial class IoPagetable
{
    public const ulong PageSize = 4096;
    public const ulong HugePageSize = 2UL << 20;

    private readonly List<IoptArea> _areas = [];            // sorted by Iova, non-overlapping
    private readonly List<IoptReserved> _reserved = [];
    private List<(ulong Start, ulong Last)> _allowed = [];  // sorted, non-overlapping
    private readonly List<IommuPagingDomain> _domains = [];
    private readonly List<Iommufd.IommufdAccess> _accesses = [];
    private readonly List<(ulong Va, ulong Pa, ulong Length)> _runs = [];

    public IReadOnlyList<IoptArea> Areas => _areas;
    public IReadOnlyList<IoptReserved> Reserved => _reserved;
    public IReadOnlyList<(ulong Start, ulong Last)> Allowed => _allowed;
    public IReadOnlyList<IommuPagingDomain> Domains => _domains;
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
    private Errno FillDomains(IoptArea a, IReadOnlyList<IommuPagingDomain> domains)
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
    private void UnfillDomains(IoptArea a, IReadOnlyList<IommuPagingDomain> domains)
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
}
