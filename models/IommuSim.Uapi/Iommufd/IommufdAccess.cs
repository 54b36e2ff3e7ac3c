namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_access: an in-kernel user of an IOAS (an emulated or mediated device) that reads
/// and pins user pages through IOVAs instead of through an IOMMU domain. Holds its IOAS; the pages it
/// has pinned lock their areas, so IOAS_UNMAP of them fails with EBUSY until they are unpinned or
/// the access is destroyed. Created in the model as the selftest's mock access is.
/// </summary>
public sealed class IommufdAccess : IommufdObject
{
    private readonly List<(ulong Start, ulong Last)> _pins = [];

    internal IommufdAccess(IommufdContext ictx, Ioas ioas) : base(ictx) => Ioas = ioas;

    public override IommufdObjectType Type => IommufdObjectType.Access;

    public Ioas Ioas { get; }

    public IReadOnlyList<(ulong Start, ulong Last)> Pins => _pins;

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

    internal override void Release()
    {
        foreach (var (start, last) in _pins) Ioas.Iopt.LockRange(start, last, -1);
        _pins.Clear();
        Ioas.Put();
    }
}
