using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iopt;

namespace IommuSim.Uapi.Iommufd;

/// <summary>The IOAS ioctls (drivers/iommu/iommufd/ioas.c) and IOMMU_OPTION.</summary>
public sealed partial class IommufdContext
{
    private const uint MapFlagsValid = IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.WRITEABLE | IommuIoasMapFlags.READABLE;

    public Errno IoasAlloc(IommuIoasAlloc cmd)
    {
        if (cmd.flags != 0) return Errno.EOPNOTSUPP;
        cmd.out_ioas_id = Finalize(new Ioas(this)).Id;
        return Errno.OK;
    }

    /// <summary>
    /// Creates an in-kernel ACCESS on an IOAS (the selftest's IOMMU_TEST_OP_CREATE_ACCESS: iommufd_access_create +
    /// iommufd_access_attach); it holds the IOAS. An access that pins pages needs PAGE_SIZE alignment
    /// (access->iova_alignment), so iopt_add_access raises the IOAS alignment: EADDRINUSE when areas are not aligned.
    /// </summary>
    public Errno AccessCreate(uint ioasId, out uint accessId)
    {
        accessId = 0;
        Errno rc = Get(ioasId, out Ioas ioas);
        if (rc != Errno.OK) return rc;
        var access = new IommufdAccess(this, ioas);
        rc = ioas.Iopt.AddAccess(access);
        if (rc != Errno.OK) return rc;
        ioas.Get();
        accessId = Finalize(access).Id;
        return Errno.OK;
    }

    /// <summary>IOMMU_IOAS_IOVA_RANGES: the usable IOVA (holes of the reserved ranges), EMSGSIZE when it does not fit.</summary>
    public Errno IoasIovaRanges(IommuIoasIovaRanges cmd)
    {
        if (cmd.__reserved != 0) return Errno.EOPNOTSUPP;
        Errno rc = Get(cmd.ioas_id, out Ioas ioas);
        if (rc != Errno.OK) return rc;
        var ranges = ioas.Iopt.UsableRanges();
        uint capacity = cmd.num_iovas;
        // The caller's array holds `capacity` entries; only the ranges that exist are written (never allocate the
        // capacity itself: it may be near 2^32).
        int fill = (int)Math.Min(capacity, (uint)ranges.Count);
        if (cmd.allowed_iovas.Length < fill) cmd.allowed_iovas = new IommuIovaRange[fill];
        for (int i = 0; i < fill; i++)
            cmd.allowed_iovas[i] = new IommuIovaRange { start = ranges[i].Start, last = ranges[i].Last };
        cmd.num_iovas = (uint)ranges.Count;
        cmd.out_iova_alignment = ioas.Iopt.IovaAlignment;
        return ranges.Count > capacity ? Errno.EMSGSIZE : Errno.OK;
    }

    public Errno IoasAllowIovas(IommuIoasAllowIovas cmd)
    {
        if (cmd.__reserved != 0) return Errno.EOPNOTSUPP;
        Errno rc = Get(cmd.ioas_id, out Ioas ioas);
        if (rc != Errno.OK) return rc;
        if (cmd.num_iovas > cmd.allowed_iovas.Length) return Errno.EFAULT;
        var list = new List<(ulong, ulong)>();
        for (int i = 0; i < cmd.num_iovas; i++) list.Add((cmd.allowed_iovas[i].start, cmd.allowed_iovas[i].last));
        return ioas.Iopt.SetAllowIova(list);
    }

    private static Access ProtOf(uint flags)
        => ((flags & IommuIoasMapFlags.READABLE) != 0 ? Access.Read : Access.None)
         | ((flags & IommuIoasMapFlags.WRITEABLE) != 0 ? Access.Write : Access.None);

    /// <summary>
    /// IOMMU_IOAS_MAP_FILE: maps [start, start + length) of the file behind <c>fd</c> (<paramref name="file"/>, null when
    /// the fd is not open: EBADF) at a fixed IOVA or one the allocator picks (out: iova). The pages are found by file
    /// offset when they are pinned, so a file that is not a memfd, or a range past its end, fails with EINVAL then:
    /// at this call when a domain is attached, else at the first attach (iommufd_ioas_map_file, memfd_pin_folios).
    /// </summary>
    public Errno IoasMapFile(IommuIoasMapFile cmd, object? file)
    {
        Errno rc = CheckMap(cmd.flags, cmd.iova, cmd.length, cmd.ioas_id, out Ioas ioas);
        if (rc != Errno.OK) return rc;
        if (file is null) return Errno.EBADF;
        if (cmd.length == 0) return Errno.EINVAL;
        if (cmd.start + (cmd.length - 1) < cmd.start) return Errno.EOVERFLOW;
        var pages = new IoptPages(Mm, file, cmd.start, cmd.length, (cmd.flags & IommuIoasMapFlags.WRITEABLE) != 0, PagesAccountMode);
        return MapNewPages(ioas, pages, cmd.flags, ref cmd.iova);
    }

    /// <summary>IOMMU_IOAS_MAP: maps user memory at a fixed IOVA or one the allocator picks (out: iova).</summary>
    public Errno IoasMap(IommuIoasMap cmd)
    {
        if (cmd.__reserved != 0) return Errno.EOPNOTSUPP;
        Errno rc = CheckMap(cmd.flags, cmd.iova, cmd.length, cmd.ioas_id, out Ioas ioas);
        if (rc != Errno.OK) return rc;
        // iopt_alloc_user_pages: user_va + length must not wrap (EOVERFLOW); then iopt_alloc_pages refuses length 0
        // and lengths within a page of SIZE_MAX (EINVAL).
        if (cmd.user_va + cmd.length < cmd.user_va) return Errno.EOVERFLOW;
        if (cmd.length == 0 || cmd.length > ulong.MaxValue - IoPagetable.PageSize) return Errno.EINVAL;
        var pages = new IoptPages(Mm, cmd.user_va, cmd.length, (cmd.flags & IommuIoasMapFlags.WRITEABLE) != 0, PagesAccountMode);
        return MapNewPages(ioas, pages, cmd.flags, ref cmd.iova);
    }

    /// <summary>The checks IOAS_MAP and IOAS_MAP_FILE share, in the kernel's order, up to the IOAS lookup.</summary>
    private Errno CheckMap(uint flags, ulong iova, ulong length, uint ioasId, out Ioas ioas)
    {
        ioas = null!;
        if ((flags & ~MapFlagsValid) != 0) return Errno.EOPNOTSUPP;
        if (iova >= ulong.MaxValue || length >= ulong.MaxValue) return Errno.EOVERFLOW;
        if ((flags & (IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE)) == 0) return Errno.EINVAL;
        return Get(ioasId, out ioas);
    }

    /// <summary>iopt_map_common: maps all of <paramref name="pages"/> at <paramref name="iova"/>, or at one the allocator
    /// picks (written back) unless FIXED_IOVA.</summary>
    private static Errno MapNewPages(Ioas ioas, IoptPages pages, uint flags, ref ulong iova)
    {
        ulong at = iova;
        Errno rc = ioas.Iopt.MapPages([new Iopt.IoPagetable.PagesElement(pages, 0, pages.Length)], ref at, ProtOf(flags),
            allocIova: (flags & IommuIoasMapFlags.FIXED_IOVA) == 0);
        if (rc == Errno.OK) iova = at;
        return rc;
    }

    /// <summary>IOMMU_IOAS_COPY: maps the pages behind a source range (contiguous areas) into a destination IOAS.</summary>
    public Errno IoasCopy(IommuIoasCopy cmd)
    {
        if ((cmd.flags & ~MapFlagsValid) != 0) return Errno.EOPNOTSUPP;
        if (cmd.length >= ulong.MaxValue || cmd.src_iova >= ulong.MaxValue || cmd.dst_iova >= ulong.MaxValue) return Errno.EOVERFLOW;
        if ((cmd.flags & (IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE)) == 0) return Errno.EINVAL;
        Errno rc = Get(cmd.src_ioas_id, out Ioas src);
        if (rc != Errno.OK) return rc;
        var elements = new List<Iopt.IoPagetable.PagesElement>();
        rc = src.Iopt.GetPages(cmd.src_iova, cmd.length, elements);
        if (rc != Errno.OK) return rc;
        rc = Get(cmd.dst_ioas_id, out Ioas dst);
        if (rc != Errno.OK) return rc;
        ulong iova = cmd.dst_iova;
        rc = dst.Iopt.MapPages(elements, ref iova, ProtOf(cmd.flags), allocIova: (cmd.flags & IommuIoasMapFlags.FIXED_IOVA) == 0);
        if (rc == Errno.OK) cmd.dst_iova = iova;
        return rc;
    }

    /// <summary>IOMMU_IOAS_UNMAP: whole areas only; iova 0 + length U64_MAX unmaps everything (out: length).</summary>
    public Errno IoasUnmap(IommuIoasUnmap cmd)
    {
        Errno rc = Get(cmd.ioas_id, out Ioas ioas);
        if (rc != Errno.OK) return rc;
        ulong unmapped;
        if (cmd.iova == 0 && cmd.length == ulong.MaxValue) rc = ioas.Iopt.UnmapAll(out unmapped);
        else if (cmd.iova >= ulong.MaxValue || cmd.length >= ulong.MaxValue) return Errno.EOVERFLOW;
        else rc = ioas.Iopt.UnmapIova(cmd.iova, cmd.length, out unmapped);
        if (rc == Errno.OK) cmd.length = unmapped;
        return rc;
    }

    /// <summary>IOMMU_OPTION: RLIMIT_MODE (context-wide) and HUGE_PAGES (per IOAS).</summary>
    public Errno Option(IommuOption cmd)
    {
        if (cmd.__reserved != 0) return Errno.EOPNOTSUPP;
        switch (cmd.option_id)
        {
            case IommuOptionId.RLIMIT_MODE:
                if (cmd.object_id != 0) return Errno.EOPNOTSUPP; // iommufd_option_rlimit_mode takes no object
                if (cmd.op == IommuOptionOp.GET)
                {
                    cmd.val64 = RlimitMode;
                    return Errno.OK;
                }
                if (cmd.op != IommuOptionOp.SET) return Errno.EOPNOTSUPP;
                if (!Kernel.Spec.Privileged) return Errno.EPERM;
                if (_objects.Count != 0) return Errno.EBUSY; // checked before the value, as the kernel does
                if (cmd.val64 > 1) return Errno.EINVAL;
                RlimitMode = cmd.val64;
                return Errno.OK;
            case IommuOptionId.HUGE_PAGES:
                {
                    Errno rc = Get(cmd.object_id, out Ioas ioas);
                    if (rc != Errno.OK) return rc;
                    if (cmd.op == IommuOptionOp.GET)
                    {
                        cmd.val64 = ioas.Iopt.DisableLargePages ? 0UL : 1UL;
                        return Errno.OK;
                    }
                    if (cmd.op != IommuOptionOp.SET) return Errno.EOPNOTSUPP;
                    if (cmd.val64 == 0) return ioas.Iopt.SetDisableLargePages();
                    if (cmd.val64 == 1)
                    {
                        ioas.Iopt.SetEnableLargePages();
                        return Errno.OK;
                    }
                    return Errno.EINVAL;
                }
            default:
                return Errno.EOPNOTSUPP;
        }
    }

    /// <summary>IOMMU_VFIO_IOAS: get, set or clear the IOAS the VFIO compat ioctls use.</summary>
    public Errno VfioIoas(IommuVfioIoas cmd)
    {
        if (cmd.__reserved != 0) return Errno.EOPNOTSUPP;
        switch (cmd.op)
        {
            case IommuVfioIoasOp.GET:
                if (CompatIoas is null) return Errno.ENODEV;
                cmd.ioas_id = CompatIoas.Id;
                return Errno.OK;
            case IommuVfioIoasOp.SET:
                {
                    Errno rc = Get(cmd.ioas_id, out Ioas ioas);
                    if (rc != Errno.OK) return rc;
                    CompatIoas = ioas;
                    return Errno.OK;
                }
            case IommuVfioIoasOp.CLEAR:
                CompatIoas = null;
                return Errno.OK;
            default:
                return Errno.EOPNOTSUPP;
        }
    }

    /// <summary>iommufd_vfio_compat_ioas_create: the compat IOAS, made on first use by a VFIO group.</summary>
    public Ioas CompatIoasGetOrCreate()
    {
        if (CompatIoas is not null) return CompatIoas;
        CompatIoas = Finalize(new Ioas(this));
        return CompatIoas;
    }
}
