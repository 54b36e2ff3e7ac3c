using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver;

namespace IommuSim.Uapi.Iopt;

/// <summary>Reserved and allowed ranges, attached domains and accesses, and the IOVA alignment they impose (iopt_reserve_iova, iopt_table_add_domain, iopt_add_access).</summary>
public sealed partial class IoPagetable
{
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
    public Errno AddDomain(IommuPagingDomain domain)
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

    private Errno FillOne(IoptArea a, IommuPagingDomain d)
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
    public void RemoveDomain(IommuPagingDomain domain)
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
