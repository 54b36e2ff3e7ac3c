using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Devices;

/// <summary>
/// The host's DMA-mapping interface as a device driver model uses it while the simulation runs
/// (Linux dma_map_single / dma_unmap_single over an IOMMU domain, or a VFIO program's
/// IOAS_MAP / IOAS_UNMAP). Calls are asynchronous in simulated time: the implementation charges the
/// driver CPU time the call costs (and, for a strict unmap, the IOTLB invalidation and its wait)
/// and then calls the client back. Implemented by the uAPI layer; device models only see this.
/// </summary>
public interface IDmaApi
{
    /// <summary><c>strict</c>, <c>lazy</c> or <c>none</c> (translation.dmaApi.mode).</summary>
    string Mode { get; }

    /// <summary>Maps a new buffer of <paramref name="bytes"/> for <paramref name="device"/>;
    /// <see cref="IDmaApiClient.OnMapped"/> gets its IOVA when the mapping is usable. Calls run on
    /// driver CPU <paramref name="cpu"/> (a multi-queue driver uses one per queue).</summary>
    void Map(DmaEngine device, int bytes, Access access, IDmaApiClient client, long tag, int cpu = 0);

    /// <summary>Unmaps a buffer; <see cref="IDmaApiClient.OnUnmapped"/> when the call returns
    /// (strict: after the invalidation completed; lazy: once queued for a later flush). Use the CPU
    /// that mapped it (its IOVA came from that CPU's allocator).</summary>
    void Unmap(DmaEngine device, ulong iova, int bytes, IDmaApiClient client, long tag, int cpu = 0);

    /// <summary>Maps <paramref name="count"/> buffers of <paramref name="bytesEach"/> in one contiguous
    /// IOVA range (one allocation); <see cref="IDmaApiClient.OnMapped"/> gets the first buffer's IOVA,
    /// buffer i is at that + i × <see cref="BatchStride"/>. Default: one map of the whole range.</summary>
    void MapBatch(DmaEngine device, int count, int bytesEach, Access access, IDmaApiClient client, long tag, int cpu = 0)
        => Map(device, count * BatchStride(bytesEach), access, client, tag, cpu);

    /// <summary>Unmaps a batch mapped with <see cref="MapBatch"/> (one call, one invalidation over the range).</summary>
    void UnmapBatch(DmaEngine device, ulong iova, int count, int bytesEach, IDmaApiClient client, long tag, int cpu = 0)
        => Unmap(device, iova, count * BatchStride(bytesEach), client, tag, cpu);

    /// <summary>Distance between the buffers of a batch: each starts on a 4 KiB page.</summary>
    static int BatchStride(int bytesEach) => (bytesEach + 0xFFF) & ~0xFFF;
}

/// <summary>Receives the completions of <see cref="IDmaApi"/> calls.</summary>
public interface IDmaApiClient
{
    void OnMapped(long tag, ulong iova);
    void OnUnmapped(long tag);
}
