using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Caches;
using IommuSim.Hardware.Walk;

namespace IommuSim.Hardware.Smmu.Walk;

/// <summary>What a stage-2 sub-walk is translating.</summary>
internal enum SmmuS2Purpose : byte
{
    /// <summary>The IPA of a stage-1 table descriptor (nested walks).</summary>
    Stage1Table,
    /// <summary>The final output IPA (or, stage 2 alone, the input address).</summary>
    Final,
}

/// <summary>One table walk in flight: a resumable 1-D or 2-D walk that issues one descriptor read at a time.</summary>
internal sealed class SmmuWalk : TableWalk<SmmuTransaction>
{
    public SmmuStreamConfig Config;
    public ulong Address;

    // Stage-1 progress (the level is TableWalk.S1Level).
    public ulong S1TableIpa;
    /// <summary>Physical address of the stage-1 descriptor to read.</summary>
    public ulong S1EntryPa;
    public Access S1Rights;
    public int S1LeafShift;
    public ulong S1LeafPa;
    public bool HasS1Leaf;

    // Current stage-2 sub-walk (the level is TableWalk.S2Level).
    public SmmuS2Purpose Purpose;
    public ulong S2Input;
    public ulong S2Table;
    public Access S2Rights;
    public int S2LeafShift;
    public ulong S2LeafPa;
    public bool HasS2Leaf;

    public ulong OutputAddress;
    public int Reads;
    public SmmuEventType Fault;
    public bool FaultInStage2;
    public bool FaultOnTableWalk;
    public ulong FaultIpa;

    /// <summary>Resets the walk for a miss of <paramref name="first"/> (the walker slots set the waiters).</summary>
    public void Init(SmmuTransaction first)
    {
        Config = first.Config;
        Address = first.Address;
        S1Level = 0; S1TableIpa = S1EntryPa = 0; S1Rights = Access.ReadWrite; S1LeafShift = 63; S1LeafPa = 0; HasS1Leaf = false;
        Purpose = SmmuS2Purpose.Final; S2Input = 0; S2Level = 0; S2Table = 0; S2Rights = Access.ReadWrite; S2LeafShift = 63;
        S2LeafPa = 0; HasS2Leaf = false;
        PendingAddress = PendingValue = OutputAddress = 0;
        Reads = 0;
        Faulted = FaultInStage2 = FaultOnTableWalk = false;
        Fault = SmmuEventType.None;
        FaultIpa = 0;
    }

    /// <summary>Same regime and the same 4 KiB page (the smallest leaf any granule maps).</summary>
    public bool Covers(in SmmuStreamConfig c, ulong address)
        => Config.Vmid == c.Vmid && Config.Asid == c.Asid && Config.Stage1 == c.Stage1 && Config.Stage2 == c.Stage2
           && (Address >> 12) == (address >> 12);
}
