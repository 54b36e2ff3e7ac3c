using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// Batched mapping, the IOVA-contiguity half of the fix of Rubin et al., "Fast &amp; Safe IO Memory
/// Protection" (SOSP 2024): a driver maps a batch of <c>count</c> ring buffers with one IOVA
/// allocation, so the batch occupies one contiguous, size-aligned IOVA range (one rcache size class
/// per batch length, drivers/iommu/iova.c), and unmaps the whole batch with one call and one
/// page-selective invalidation covering it. Buffer <c>i</c> of a batch mapped at <c>iova</c> is at
/// <c>iova + i × BatchStride(bytesEach)</c>. The call is charged as one map (mapCostNs) and one unmap:
/// the per-page cost of writing <c>count</c> PTEs is not modelled separately (see docs/config.md).
/// </summary>
public sealed partial class KernelDmaApi
{
    public void MapBatch(DmaEngine device, int count, int bytesEach, Access access, IDmaApiClient client, long tag, int cpu = 0)
        => Map(device, BatchBytes(count, bytesEach), access, client, tag, cpu);

    public void UnmapBatch(DmaEngine device, ulong iova, int count, int bytesEach, IDmaApiClient client, long tag, int cpu = 0)
        => Unmap(device, iova, BatchBytes(count, bytesEach), client, tag, cpu);

    private static int BatchBytes(int count, int bytesEach)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "a batch maps at least one buffer");
        return checked(count * IDmaApi.BatchStride(bytesEach));
    }
}
