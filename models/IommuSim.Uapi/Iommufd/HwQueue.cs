namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_hw_queue (viommu.c): a guest-owned queue in guest memory that the hardware reads directly
/// (Tegra241 CMDQV: a virtual command queue), so the guest's commands reach the IOMMU without a VMM trap.
/// The core pins the queue's pages through an internal access on the nest parent's IOAS (IOAS_UNMAP of them is
/// EBUSY while the queue lives) after checking that they are physically contiguous. Holds the vIOMMU.
/// </summary>
public sealed class HwQueue : IommufdObject
{
    internal HwQueue(IommufdContext ictx, Viommu viommu, uint type, ulong baseAddr, ulong length) : base(ictx)
    {
        Viommu = viommu;
        QueueType = type;
        BaseAddr = baseAddr;
        Length = length;
    }

    public override IommufdObjectType Type => IommufdObjectType.HwQueue;

    public Viommu Viommu { get; }

    /// <summary>hw_queue->type (enum iommu_hw_queue_type).</summary>
    public uint QueueType { get; }

    /// <summary>hw_queue->base_addr: the queue's nesting-parent IOVA (the guest physical address).</summary>
    public ulong BaseAddr { get; }

    /// <summary>hw_queue->length in bytes.</summary>
    public ulong Length { get; }

    /// <summary>The host physical address the hardware reads the queue from.</summary>
    public ulong BasePa { get; internal set; }

    /// <summary>hw_queue->access: the internal access pinning the queue's pages.</summary>
    internal IommufdAccess? Access { get; set; }

    /// <summary>Whether the driver's hw_queue_init_phys succeeded (its destroy then runs first on release).</summary>
    internal bool DriverInitialized { get; set; }

    /// <summary>The driver's per-queue state (Tegra241: the logical VCMDQ).</summary>
    public object? DriverData { get; set; }

    /// <summary>Queues of the same vIOMMU that must be destroyed before this one (iommufd_hw_queue_depend).</summary>
    internal int Dependents { get; set; }

    /// <summary>iommufd_hw_queue_destroy: the driver's destroy, then the access (unpinned, detached), then the vIOMMU.</summary>
    internal override void Release()
    {
        if (DriverInitialized) Viommu.Ops?.HwQueueDestroy(this);
        if (Access is { } a) a.Release();
        Viommu.Put();
    }
}
