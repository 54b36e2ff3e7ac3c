using IommuSim.Hardware.Memory;

namespace IommuSim.Hardware.PageTables;

/// <summary>Tables in host-physical memory, pages from the host frame allocator.</summary>
public sealed class HostTableMemory(PhysicalMemory memory, FrameAllocator frames) : ITableMemory
{
    public ulong ReadEntry(ulong tableAddress) => memory.ReadU64(tableAddress);
    public void WriteEntry(ulong tableAddress, ulong value) => memory.WriteU64(tableAddress, value);
    public ulong AllocateTablePage() => frames.AllocateFrame();
    public void FreeTablePage(ulong address) => frames.FreeFrame(address);
}
