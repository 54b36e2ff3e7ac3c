namespace IommuSim.Hardware.PageTables;

/// <summary>
/// Where a page table's pages live and come from. Host tables use host-physical memory and the
/// host frame allocator; a guest's stage-1 table lives at guest-physical addresses inside VM
/// memory, so its reads and writes go through the VM's GPA → HPA mapping.
/// </summary>
public interface ITableMemory
{
    ulong ReadEntry(ulong tableAddress);
    void WriteEntry(ulong tableAddress, ulong value);
    /// <summary>A zeroed 4 KiB table page; returns its address in this table's address space.</summary>
    ulong AllocateTablePage();
    void FreeTablePage(ulong address);
}
