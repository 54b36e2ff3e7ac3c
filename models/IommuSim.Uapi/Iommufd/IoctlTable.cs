namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// One row of <c>iommufd_ioctl_ops[]</c> (drivers/iommu/iommufd/main.c), as <c>IOCTL_OP(_ioctl, _fn, _struct, _last)</c>
/// builds it: the command number (<c>_IOC_NR</c>), <c>min_size</c> = <c>offsetofend(_struct, _last)</c> (the end of
/// the command's first-version fields), <c>size</c> = <c>sizeof(_struct)</c> today, the argument struct and the handler.
/// </summary>
public sealed record IommufdIoctlOp(string Name, uint Nr, uint MinSize, uint Size, Type Struct, Func<IommufdContext, object, Errno> Execute);

/// <summary>
/// <c>iommufd_ioctl_ops[]</c> and the dispatch rules of <c>iommufd_fops_ioctl</c>. Sizes from
/// include/uapi/linux/iommufd.h (v6.17): a struct that grew keeps its old end as <c>min_size</c>.
/// </summary>
public static class IommufdIoctlTable
{
    /// <summary>IOMMUFD_CMD_BASE: the first command number; the table is indexed by nr - base.</summary>
    public const uint IOMMUFD_CMD_BASE = 0x80;

    private static IommufdIoctlOp Op<T>(string name, uint nr, uint min, uint size, Func<IommufdContext, T, Errno> fn) where T : class
        => new(name, nr, min, size, typeof(T), (ctx, cmd) => fn(ctx, (T)cmd));

    /// <summary>The table in command-number order (IOMMUFD_CMD_DESTROY = 0x80 …).</summary>
    public static IReadOnlyList<IommufdIoctlOp> Ops { get; } =
    [
        Op<IommuDestroy>("DESTROY", 0x80, 8, 8, (c, x) => c.Destroy(x)),
        Op<IommuIoasAlloc>("IOAS_ALLOC", 0x81, 12, 12, (c, x) => c.IoasAlloc(x)),
        Op<IommuIoasAllowIovas>("IOAS_ALLOW_IOVAS", 0x82, 24, 24, (c, x) => c.IoasAllowIovas(x)),
        Op<IommuIoasCopy>("IOAS_COPY", 0x83, 40, 40, (c, x) => c.IoasCopy(x)),
        Op<IommuIoasIovaRanges>("IOAS_IOVA_RANGES", 0x84, 32, 32, (c, x) => c.IoasIovaRanges(x)),
        Op<IommuIoasMap>("IOAS_MAP", 0x85, 40, 40, (c, x) => c.IoasMap(x)),
        Op<IommuIoasUnmap>("IOAS_UNMAP", 0x86, 24, 24, (c, x) => c.IoasUnmap(x)),
        Op<IommuOption>("OPTION", 0x87, 24, 24, (c, x) => c.Option(x)),
        Op<IommuVfioIoas>("VFIO_IOAS", 0x88, 12, 12, (c, x) => c.VfioIoas(x)),
        // offsetofend(__reserved): data_type, data_len, data_uptr (nesting) and fault_id grew it to 48.
        Op<IommuHwptAlloc>("HWPT_ALLOC", 0x89, 24, 48, (c, x) => c.HwptAlloc(x)),
        // offsetofend(__reserved[3]); out_capabilities ends at 40.
        Op<IommuHwInfo>("GET_HW_INFO", 0x8a, 32, 40, (c, x) => c.GetHwInfo(x)),
        Op<IommuHwptSetDirtyTracking>("HWPT_SET_DIRTY_TRACKING", 0x8b, 16, 16, (c, x) => c.HwptSetDirtyTracking(x)),
        Op<IommuHwptGetDirtyBitmap>("HWPT_GET_DIRTY_BITMAP", 0x8c, 48, 48, (c, x) => c.HwptGetDirtyBitmap(x)),
        Op<IommuHwptInvalidate>("HWPT_INVALIDATE", 0x8d, 32, 32, (c, x) => c.HwptInvalidate(x)),
        Op<IommuFaultAlloc>("FAULT_QUEUE_ALLOC", 0x8e, 16, 16, (c, x) => c.FaultQueueAlloc(x)),
        // iommufd_ioas_map_file: fget(cmd->fd) on the caller's file table.
        Op<IommuIoasMapFile>("IOAS_MAP_FILE", 0x8f, 40, 40, (c, x) => c.IoasMapFile(x, c.Fget(x.fd))),
        // offsetofend(out_viommu_id); data_len, __reserved, data_uptr (v6.16) end at 40.
        Op<IommuViommuAlloc>("VIOMMU_ALLOC", 0x90, 24, 40, (c, x) => c.ViommuAlloc(x)),
        Op<IommuVdeviceAlloc>("VDEVICE_ALLOC", 0x91, 24, 24, (c, x) => c.VdeviceAlloc(x)),
        Op<IommuIoasChangeProcess>("IOAS_CHANGE_PROCESS", 0x92, 8, 8, (c, x) => c.IoasChangeProcess(x)),
        Op<IommuVeventqAlloc>("VEVENTQ_ALLOC", 0x93, 32, 32, (c, x) => c.VeventqAlloc(x)),
        Op<IommuHwQueueAlloc>("HW_QUEUE_ALLOC", 0x94, 40, 40, (c, x) => c.HwQueueAlloc(x)),
    ];

    private static readonly Dictionary<string, IommufdIoctlOp> ByNameMap = Ops.ToDictionary(o => o.Name, StringComparer.Ordinal);

    /// <summary>The op for a command name (the IOMMU_ prefix left off), or null.</summary>
    public static IommufdIoctlOp? ByName(string name) => ByNameMap.GetValueOrDefault(name);

    /// <summary><c>&amp;iommufd_ioctl_ops[nr - IOMMUFD_CMD_BASE]</c>, or null when nr is outside the table.</summary>
    public static IommufdIoctlOp? Find(uint nr)
        => nr >= IOMMUFD_CMD_BASE && nr - IOMMUFD_CMD_BASE < (uint)Ops.Count ? Ops[(int)(nr - IOMMUFD_CMD_BASE)] : null;

    /// <summary>
    /// The checks of <c>iommufd_fops_ioctl</c> before the handler runs, in its order:
    /// a number outside the table goes to <c>iommufd_vfio_ioctl</c>, which answers -ENOIOCTLCMD (ENOTTY to the
    /// user) for anything it does not know either; <c>user_size &lt; op-&gt;min_size</c> is EINVAL;
    /// <c>copy_struct_from_user</c> fails a larger struct whose bytes beyond <c>op-&gt;size</c> are not all zero with E2BIG.
    /// </summary>
    /// <param name="userSize">The u32 <c>size</c> the caller wrote at the start of its struct.</param>
    /// <param name="unknownBytesNonZero">Whether any byte past the kernel's struct (when <paramref name="userSize"/> is larger) is non-zero.</param>
    public static Errno Check(uint nr, ulong userSize, bool unknownBytesNonZero)
        => Find(nr) is { } op ? CheckSize(op, userSize, unknownBytesNonZero) : Errno.ENOTTY;

    internal static Errno CheckSize(IommufdIoctlOp op, ulong userSize, bool unknownBytesNonZero)
    {
        if (userSize < op.MinSize) return Errno.EINVAL;
        if (userSize > op.Size && unknownBytesNonZero) return Errno.E2BIG;
        return Errno.OK;
    }
}

public sealed partial class IommufdContext
{
    /// <summary>fget() on the file table of the process that opened this context (IOAS_MAP_FILE's fd); no file → null.</summary>
    internal Func<int, object?> Fget { get; set; } = _ => null;

    /// <summary>
    /// <c>iommufd_fops_ioctl</c>: command <paramref name="nr"/> with a <typeparamref name="T"/> argument whose
    /// <c>size</c> field says <paramref name="userSize"/>. The struct is copied in (<paramref name="copyFromUser"/>)
    /// only after the size checks pass, then the table's handler runs; <paramref name="cmd"/> holds the struct
    /// with its out fields when it was copied, else null.
    /// </summary>
    public Errno Ioctl<T>(uint nr, ulong userSize, bool unknownBytesNonZero, Func<T> copyFromUser, out T? cmd) where T : class
    {
        cmd = null;
        if (IommufdIoctlTable.Find(nr) is not { } op) return Errno.ENOTTY;
        // The ioctl number encodes the argument's type and size: another struct is another command (op->ioctl_num != cmd).
        if (op.Struct != typeof(T)) return Errno.ENOTTY;
        Errno rc = IommufdIoctlTable.CheckSize(op, userSize, unknownBytesNonZero);
        if (rc != Errno.OK) return rc;
        cmd = copyFromUser();
        return op.Execute(this, cmd);
    }

    /// <summary><see cref="Ioctl{T}(uint, ulong, bool, Func{T}, out T)"/> with a complete struct of today's size.</summary>
    public Errno Ioctl<T>(uint nr, T cmd) where T : class
        => Ioctl(nr, IommufdIoctlTable.Find(nr)?.Size ?? 0, false, () => cmd, out _);
}
