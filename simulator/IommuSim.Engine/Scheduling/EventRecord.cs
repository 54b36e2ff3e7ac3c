namespace IommuSim.Engine.Scheduling;

/// <summary>A pending event, written once when it is scheduled and read once when it runs.</summary>
internal struct EventRecord
{
    public long Time;
    public ulong Order; // priority in the top 8 bits, insertion sequence below
    public IEventHandler? Handler;
    public object? Payload;
    public long Arg;
    public int Kind;
    public int Next;    // the next record of its bucket in a linked rung (fills the padding to 48 bytes)
}
