using System.Runtime.CompilerServices;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using IommuSim.Hardware.Walk;

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
/// at a time. Pooled by <see cref="PageWalker"/>'s walker slots; the requests waiting on it form a linked list
/// through <see cref="VtdRequestState.Next"/>.
/// </summary>
internal sealed class PageWalk : TableWalk<Tlp>
{
    public ushort Did;
    public uint Pasid;
    public ulong Iova;
    public PasidTableEntry Context;

    // Stage-1 progress (the level is TableWalk.S1Level).
    public ulong S1TableGpa;
    public ulong S1TableHpa;
    public Access S1Rights;
    public PageSize S1Size;
    public bool HasS1Leaf;

    // Current stage-2 sub-walk (the level is TableWalk.S2Level).
    public Stage2Purpose Purpose;
    public ulong S2Input;
    public ulong S2Table;
    public Access S2Rights;
    public PageSize S2Size;
    public bool HasS2Leaf;
    public ulong S2LeafEntryAddress;

    public ulong FinalHpa;
    public int Stage1Reads;
    public int Stage2Reads;
    public FaultReason FaultReason;

    /// <summary>Resets the walk for a miss of <paramref name="first"/> (the walker slots set the waiters).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Init(Tlp first)
    {
        Did = first.Vtd.Context.DomainId;
        Pasid = first.Vtd.EffectivePasid;
        Iova = first.Address;
        Context = first.Vtd.Context;
        S1Level = 0; S1TableGpa = S1TableHpa = 0; S1Rights = Access.ReadWrite; S1Size = PageSize.Size1G; HasS1Leaf = false;
        S2Input = 0; S2Level = 0; S2Table = 0; S2Rights = Access.ReadWrite; S2Size = PageSize.Size1G; HasS2Leaf = false;
        S2LeafEntryAddress = 0;
        PendingAddress = PendingValue = 0;
        FinalHpa = 0;
        Stage1Reads = Stage2Reads = 0;
        Faulted = false;
        FaultReason = default;
    }

    public bool Covers(ushort did, uint pasid, ulong iova) => Did == did && Pasid == pasid && (Iova >> 12) == (iova >> 12);
}
