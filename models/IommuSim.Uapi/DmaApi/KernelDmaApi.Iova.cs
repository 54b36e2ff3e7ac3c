namespace IommuSim.Uapi.DmaApi;

public sealed partial class KernelDmaApi
{
    private readonly Dictionary<IMappingTarget, IovaAllocator> _iovaDomains = [];

    /// <summary>
    /// The IOVA allocator of <paramref name="target"/>'s domain: one <c>struct iova_domain</c> per
    /// DMA domain (iommu_dma_init_domain), shared by every CPU and device mapping into it; each CPU
    /// has its own rcache magazines in it (drivers/iommu/iova.c).
    /// </summary>
    internal IovaAllocator IovaDomain(IMappingTarget target)
    {
        if (!_iovaDomains.TryGetValue(target, out var a))
            _iovaDomains[target] = a = new IovaAllocator(target.IovaBase, target.IovaBytes, MaxCpus);
        return a;
    }
}
