using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Memory;

namespace IommuSim.Uapi.Vm;

/// <summary>
/// A VM as its VMM sets it up: guest RAM (GPA 0 … N−1) is one user mapping of the VMM process,
/// which the VMM maps into an IOAS at IOVA = GPA to form stage 2. The guest's own stage-1 tables
/// are built inside that RAM (the GUEST_* script helpers), with no invalidation: the guest sends
/// those itself through HWPT_INVALIDATE.
/// </summary>
public sealed class VirtualMachine
{
    private readonly Dictionary<ulong, PageTable> _tables = [];
    private readonly GuestTableMemory _tableMemory;

    public VirtualMachine(UserAddressSpace mm, PhysicalMemory memory, ulong memoryBytes, ulong ramAlignment = UserAddressSpace.HugePageSize)
    {
        if (memoryBytes == 0 || (memoryBytes & (PhysicalMemory.FrameSize - 1)) != 0)
            throw new ArgumentException("VM memory must be a non-zero multiple of 4 KiB", nameof(memoryBytes));
        MemoryBytes = memoryBytes;
        RamUserVa = mm.Mmap(memoryBytes, writable: true, ramAlignment);
        Ram = mm.Find(RamUserVa)!;
        _tableMemory = new GuestTableMemory(this, memory);
    }

    public ulong MemoryBytes { get; }

    /// <summary>The VMM's user address of GPA 0.</summary>
    public ulong RamUserVa { get; }

    public UserMapping Ram { get; }

    public ulong GpaToHpa(ulong gpa)
    {
        if (gpa >= MemoryBytes) throw new ArgumentOutOfRangeException(nameof(gpa), $"GPA 0x{gpa:x} is beyond the VM's 0x{MemoryBytes:x} bytes of RAM");
        return Ram.PhysicalBase + gpa;
    }

    /// <summary>GUEST_PGTABLE_ALLOC: an empty first-stage table in guest RAM; returns its root GPA.</summary>
    public ulong AllocPageTable(int levels)
    {
        var t = new PageTable(_tableMemory, TableStage.First, levels);
        _tables[t.RootAddress] = t;
        return t.RootAddress;
    }

    public PageTable? PageTable(ulong rootGpa) => _tables.GetValueOrDefault(rootGpa);

    /// <summary>The guest kernel's allocator of table pages (top of guest RAM down), shared by every guest table format.</summary>
    public GuestTableMemory TableMemory => _tableMemory;
}
