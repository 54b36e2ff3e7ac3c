namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_access: an in-kernel user of an IOAS (an emulated or mediated device) that reads
/// and pins user pages through IOVAs instead of through an IOMMU domain. Holds its IOAS. IOAS_UNMAP of
/// pinned pages calls the access's unmap op, which (like the selftest's mock access,
/// iommufd_test_access_unmap) unpins every pin that intersects the range; then the unmap proceeds.
/// </summary>
public sealed class IommufdAccess : IommufdObject
{
    private readonly List<(ulong Start, ulong Last)> _pins = [];

    internal IommufdAccess(IommufdContext ictx, Ioas ioas) : base(ictx) => Ioas = ioas;

    public override IommufdObjectType Type => IommufdObjectType.Access;

    public Ioas Ioas { get; }

    public IReadOnlyList<(ulong Start, ulong Last)> Pins => _pins;

    /// <summary>iommufd_access_create_internal (a HW queue's access): no id, no unmap op, so IOAS_UNMAP of its pins is EBUSY.</summary>
    internal bool Internal { get; init; }

    /// <summary>iommufd_access_pin_pages: lock the areas under [iova, iova+length).</summary>
    public Errno Pin(ulong iova, ulong length)
    {
        if (length == 0) return Errno.EINVAL;
        ulong last = iova + length - 1;
        if (last < iova) return Errno.EOVERFLOW;
        Errno rc = Ioas.Iopt.LockRange(iova, last, +1);
        if (rc == Errno.OK) _pins.Add((iova, last));
        return rc;
    }

    /// <summary>iommufd_access_unpin_pages: release a range pinned before (exactly as pinned).</summary>
    public Errno Unpin(ulong iova, ulong length)
    {
        if (length == 0) return Errno.EINVAL;
        int i = _pins.IndexOf((iova, iova + length - 1));
        if (i < 0) return Errno.EINVAL;
        _pins.RemoveAt(i);
        return Ioas.Iopt.LockRange(iova, iova + length - 1, -1);
    }

    /// <summary>access->ops->unmap (iommufd_test_access_unmap): drop every pin intersecting [start, last].</summary>
    internal void NotifyUnmap(ulong start, ulong last)
    {
        if (Internal) return;
        for (int i = _pins.Count - 1; i >= 0; i--)
        {
            var (s, l) = _pins[i];
            if (s > last || l < start) continue;
            _pins.RemoveAt(i);
            Ioas.Iopt.LockRange(s, l, -1);
        }
    }

    internal override void Release()
    {
        foreach (var (start, last) in _pins) Ioas.Iopt.LockRange(start, last, -1);
        _pins.Clear();
        Ioas.Iopt.RemoveAccess(this);
        Ioas.Put();
    }
}
