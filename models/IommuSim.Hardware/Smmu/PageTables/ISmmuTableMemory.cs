using IommuSim.Hardware.Memory;

namespace IommuSim.Hardware.Smmu.PageTables;

/// <summary>
/// Where SMMU tables live: translation tables of any granule (a table is a granule, or up to 16
/// concatenated granules at a stage-2 start level), stream tables and context-descriptor tables.
/// Host tables are in host-physical memory; a guest's stage-1 tables and CD tables are at IPAs
/// inside VM memory, so their reads and writes go through the VM's IPA → PA mapping.
/// </summary>
public interface ISmmuTableMemory
{
    ulong ReadU64(ulong address);
    void WriteU64(ulong address, ulong value);
    /// <summary>A zeroed, naturally aligned block of <paramref name="bytes"/> (a power of two ≥ 64).</summary>
    ulong AllocateTable(ulong bytes);
    void FreeTable(ulong address, ulong bytes);
}

/// <summary>Tables in host-physical memory: 4 KiB-or-smaller tables from the frame allocator's
/// reusable frames, larger ones as aligned contiguous runs (never reused, like the VT-d
/// root/context tables).</summary>
public sealed class HostSmmuTableMemory(PhysicalMemory memory, FrameAllocator frames) : ISmmuTableMemory
{
    public ulong ReadU64(ulong address) => memory.ReadU64(address);

    public void WriteU64(ulong address, ulong value) => memory.WriteU64(address, value);

    public ulong AllocateTable(ulong bytes)
    {
        if (bytes <= PhysicalMemory.FrameSize) return frames.AllocateFrame();
        ulong pa = frames.AllocateContiguous(bytes, bytes);
        for (ulong f = 0; f < bytes; f += PhysicalMemory.FrameSize) memory.DiscardFrame(pa + f);
        return pa;
    }

    public void FreeTable(ulong address, ulong bytes)
    {
        if (bytes <= PhysicalMemory.FrameSize) frames.FreeFrame(address);
        else for (ulong f = 0; f < bytes; f += PhysicalMemory.FrameSize) memory.DiscardFrame(address + f);
    }
}
