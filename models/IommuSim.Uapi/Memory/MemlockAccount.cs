namespace IommuSim.Uapi.Memory;

/// <summary>Which counter pinned pages are charged to (enum iopt_pages_account_mode).</summary>
public enum PinAccountMode
{
    /// <summary>Not charged against RLIMIT_MEMLOCK: the process has CAP_IPC_LOCK.</summary>
    None,

    /// <summary>user->locked_vm, shared by every process of the user (iommufd's default).</summary>
    User,

    /// <summary>mm->locked_vm of the process, as VFIO type1 accounts (IOMMU_OPTION_RLIMIT_MODE = 1, and /dev/vfio/vfio).</summary>
    Mm,
}

/// <summary>
/// The RLIMIT_MEMLOCK accounting of one simulated process: its limit, whether it may exceed it
/// (CAP_IPC_LOCK), and the counters iommufd charges pinned pages to (drivers/iommu/iommufd/pages.c:
/// incr_user_locked_vm, update_mm_locked_vm, mm->pinned_vm). Counts are 4 KiB pages.
/// </summary>
public sealed class MemlockAccount
{
    /// <summary>RLIM_INFINITY, in pages.</summary>
    public const ulong Unlimited = ulong.MaxValue;

    /// <summary>RLIMIT_MEMLOCK in pages (<see cref="Unlimited"/> by default).</summary>
    public ulong LimitPages { get; set; } = Unlimited;

    /// <summary>CAP_IPC_LOCK: pages are pinned without being charged (accounting mode none).</summary>
    public bool CapIpcLock { get; set; }

    /// <summary>user->locked_vm: pages charged in <see cref="PinAccountMode.User"/>.</summary>
    public ulong UserLockedPages { get; private set; }

    /// <summary>mm->locked_vm: pages charged in <see cref="PinAccountMode.Mm"/>.</summary>
    public ulong MmLockedPages { get; private set; }

    /// <summary>mm->pinned_vm: every page pinned for DMA, charged or not.</summary>
    public ulong PinnedPages { get; private set; }

    /// <summary>The mode new iopt_pages get in a context using <paramref name="contextMode"/>.</summary>
    public PinAccountMode ModeFor(PinAccountMode contextMode) => CapIpcLock ? PinAccountMode.None : contextMode;

    /// <summary>Charges <paramref name="pages"/> newly pinned pages: ENOMEM, charging nothing, when the counter
    /// would exceed the limit.</summary>
    public Errno Charge(PinAccountMode mode, ulong pages)
    {
        switch (mode)
        {
            case PinAccountMode.User:
                if (Exceeds(UserLockedPages, pages)) return Errno.ENOMEM;
                UserLockedPages += pages;
                break;
            case PinAccountMode.Mm:
                if (Exceeds(MmLockedPages, pages)) return Errno.ENOMEM;
                MmLockedPages += pages;
                break;
        }
        PinnedPages += pages;
        return Errno.OK;
    }

    /// <summary>Releases <paramref name="pages"/> pages charged before in <paramref name="mode"/>.</summary>
    public void Uncharge(PinAccountMode mode, ulong pages)
    {
        switch (mode)
        {
            case PinAccountMode.User: UserLockedPages -= Math.Min(UserLockedPages, pages); break;
            case PinAccountMode.Mm: MmLockedPages -= Math.Min(MmLockedPages, pages); break;
        }
        PinnedPages -= Math.Min(PinnedPages, pages);
    }

    private bool Exceeds(ulong current, ulong pages) => LimitPages != Unlimited && current + pages > LimitPages;
}
