using System.Runtime.CompilerServices;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Iommu.Walk;

/// <summary>What a stage-2 sub-walk is translating.</summary>
internal enum Stage2Purpose : byte
{
    /// <summary>The guest-physical address of a stage-1 table (nested walks).</summary>
    Stage1Table,
    /// <summary>The final (guest-)physical output address.</summary>
    Final,
}

/// <summary>
/// The state of one page walk in flight: a resumable 1-D or 2-D walk that issues one memory read
/// at a time. Pooled by <see cref="PageWalker"/>; the requests waiting on it form a linked list.
/// </summary>
internal sealed class PageWalk
{
    public ushort Did;
    public uint Pasid;
    public ulong Iova;
    public PasidTableEntry Context;
    public bool AnyWrite;

    // Waiting requests (the first one started the walk).
    public Tlp? Head;
    public Tlp? Tail;

    // Stage-1 progress.
    public int S1Level;
    public ulong S1TableGpa;
    public ulong S1TableHpa;
    public Access S1Rights;
    public PageSize S1Size;
    public bool HasS1Leaf;

    // Current stage-2 sub-walk.
    public Stage2Purpose Purpose;
    public ulong S2Input;
    public int S2Level;
    public ulong S2Table;
    public Access S2Rights;
    public PageSize S2Size;
    public bool HasS2Leaf;
    public ulong S2LeafEntryAddress;

    // The read in flight.
    public ulong PendingAddress;
    public ulong PendingValue;
    /// <summary>Which stage's read waits for its paging-structure-cache lookup to end (the walker's event kind).</summary>
    public int PendingKind;

    public ulong FinalHpa;
    /// <summary>Index of the walker running this walk.</summary>
    public int Slot;
    public int Stage1Reads;
    public int Stage2Reads;
    public bool Faulted;
    public FaultReason FaultReason;
    public long StartPs;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Init(Tlp first)
    {
        Did = first.Vtd.Context.DomainId;
        Pasid = first.Vtd.EffectivePasid;
        Iova = first.Address;
        Context = first.Vtd.Context;
        AnyWrite = first.IsWrite;
        Head = Tail = first;
        first.Vtd.Next = null;
        S1Level = 0; S1TableGpa = S1TableHpa = 0; S1Rights = Access.ReadWrite; S1Size = PageSize.Size1G; HasS1Leaf = false;
        S2Input = 0; S2Level = 0; S2Table = 0; S2Rights = Access.ReadWrite; S2Size = PageSize.Size1G; HasS2Leaf = false;
        S2LeafEntryAddress = 0;
        PendingAddress = PendingValue = 0;
        FinalHpa = 0;
        Stage1Reads = Stage2Reads = 0;
        Faulted = false;
        FaultReason = default;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AddWaiter(Tlp t)
    {
        t.Vtd.Next = null;
        if (Tail is null) Head = Tail = t;
        else { Tail.Vtd.Next = t; Tail = t; }
        AnyWrite |= t.IsWrite;
    }

    public bool Covers(ushort did, uint pasid, ulong iova) => Did == did && Pasid == pasid && (Iova >> 12) == (iova >> 12);
}
