using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.Driver;

/// <summary>
/// Host memory for a domain's page tables whose freed table pages, while the driver gathers an unmap, go
/// on the driver's freelist instead of back to the allocator (iommu_iotlb_gather.freelist): the IOTLB and
/// paging-structure caches may still point at them until the unmap's flush has completed, and only then
/// are they put (iommu_put_pages_list after iotlb_sync; for a lazy unmap, after the flush queue's flush).
/// </summary>
internal sealed class GatheredTableMemory(VtdDriver driver, PhysicalMemory memory, FrameAllocator frames) : ITableMemory
{
    public ulong ReadEntry(ulong tableAddress) => memory.ReadU64(tableAddress);
    public void WriteEntry(ulong tableAddress, ulong value) => memory.WriteU64(tableAddress, value);
    public ulong AllocateTablePage() => frames.AllocateFrame();

    public void FreeTablePage(ulong address)
    {
        if (!driver.GatherTablePage(address)) frames.FreeFrame(address);
    }
}
