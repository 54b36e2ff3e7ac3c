using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.Vm;

/// <summary>
/// Table memory of a guest-built page table: addresses are guest-physical and are translated to
/// host-physical through the VM's RAM backing (the VMM's GPA = offset into its RAM mmap). Table
/// pages come from the top of guest RAM downwards, as a guest kernel's early allocator would
/// hand them out, so that they never collide with buffers the script places from GPA 0 up.
/// </summary>
public sealed class GuestTableMemory(VirtualMachine vm, PhysicalMemory memory) : ITableMemory
{
    private readonly SortedSet<ulong> _free = [];
    private ulong _nextTop = vm.MemoryBytes;

    /// <summary>Table pages currently in use.</summary>
    public int PagesInUse { get; private set; }

    public ulong ReadEntry(ulong tableAddress) => memory.ReadU64(vm.GpaToHpa(tableAddress));

    public void WriteEntry(ulong tableAddress, ulong value) => memory.WriteU64(vm.GpaToHpa(tableAddress), value);

    public ulong AllocateTablePage()
    {
        ulong gpa;
        if (_free.Count > 0)
        {
            gpa = _free.Max;
            _free.Remove(gpa);
        }
        else
        {
            if (_nextTop < PhysicalMemory.FrameSize * 2UL) throw new GuestRamExhaustedException();
            _nextTop -= PhysicalMemory.FrameSize;
            gpa = _nextTop;
        }
        memory.DiscardFrame(vm.GpaToHpa(gpa)); // a zeroed page
        PagesInUse++;
        return gpa;
    }

    public void FreeTablePage(ulong address)
    {
        memory.DiscardFrame(vm.GpaToHpa(address));
        _free.Add(address);
        PagesInUse--;
    }
}

/// <summary>The guest kernel's allocator found no free page for a table: its call fails with ENOMEM.</summary>
public sealed class GuestRamExhaustedException() : InvalidOperationException("guest RAM exhausted by page tables");
