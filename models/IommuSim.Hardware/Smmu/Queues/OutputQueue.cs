using IommuSim.Engine.Stats;
using IommuSim.Hardware.Smmu.PageTables;

namespace IommuSim.Hardware.Smmu.Queues;

/// <summary>
/// A queue the SMMU produces into and software consumes (the event queue, the PRI queue;
/// SMMUv3 §3.5.2): 2^log2 fixed-size records in memory. When it is full the record is lost and the
/// overflow flag (PROD.OVFLG) toggles, as the spec says; software acknowledges it by copying the flag
/// into CONS.OVACKFLG (arm_smmu_evtq_thread / priq_thread) and counts what it lost.
/// </summary>
public abstract class OutputQueue : IResettable
{
    private readonly ISmmuTableMemory _memory;
    private readonly QueueIndex _index;
    private readonly int _recordWords;

    protected OutputQueue(ISmmuTableMemory memory, int log2Size, int recordBytes)
    {
        _memory = memory;
        _index = new QueueIndex(log2Size);
        _recordWords = recordBytes / 8;
        Base = memory.AllocateTable((ulong)recordBytes << log2Size);
    }

    public ulong Base { get; }
    public uint Entries => _index.Entries;
    public uint Prod { get; private set; }
    public uint Cons { get; private set; }
    /// <summary>PROD.OVFLG; differs from <see cref="OverflowAcknowledged"/> while an overflow is unacknowledged.</summary>
    public bool OverflowFlag { get; private set; }
    public bool OverflowAcknowledged { get; private set; }
    public long Written { get; private set; }
    public long Lost { get; private set; }
    public int Pending => (int)_index.Count(Prod, Cons);

    /// <summary>The queue's interrupt (EVTQ / PRIQ IRQ, or its MSI): raised after each record the hardware wrote, so
    /// software (arm_smmu_evtq_thread / arm_smmu_priq_thread) can drain the queue in simulated time.</summary>
    public event Action? RecordWritten;

    /// <summary>Hardware writes a record; false when the queue was full and it was lost.</summary>
    protected bool Produce(ReadOnlySpan<ulong> record)
    {
        if (_index.Full(Prod, Cons))
        {
            Lost++;
            if (OverflowFlag == OverflowAcknowledged) OverflowFlag = !OverflowFlag;
            return false;
        }
        ulong slot = Base + 8UL * (ulong)_recordWords * _index.Position(Prod);
        for (int i = 0; i < _recordWords; i++) _memory.WriteU64(slot + 8UL * (ulong)i, record[i]);
        Prod = _index.Next(Prod);
        Written++;
        RecordWritten?.Invoke();
        return true;
    }

    /// <summary>Software reads the oldest record; false when empty.</summary>
    protected bool Consume(Span<ulong> record)
    {
        if (_index.Empty(Prod, Cons)) return false;
        ulong slot = Base + 8UL * (ulong)_recordWords * _index.Position(Cons);
        for (int i = 0; i < _recordWords; i++) record[i] = _memory.ReadU64(slot + 8UL * (ulong)i);
        Cons = _index.Next(Cons);
        return true;
    }

    /// <summary>Software acknowledges an overflow; returns true when there was one to acknowledge.</summary>
    public bool AcknowledgeOverflow()
    {
        if (OverflowFlag == OverflowAcknowledged) return false;
        OverflowAcknowledged = OverflowFlag;
        return true;
    }

    public virtual void Reset() => Written = Lost = 0;
}

/// <summary>The event queue: 32-byte fault and configuration-error records.</summary>
public sealed class EventQueue(ISmmuTableMemory memory, int log2Size) : OutputQueue(memory, log2Size, SmmuEvent.Bytes)
{
    public bool Record(in SmmuEvent e)
    {
        Span<ulong> d = stackalloc ulong[4];
        e.Encode(d);
        return Produce(d);
    }

    public bool TryRead(out SmmuEvent e)
    {
        Span<ulong> d = stackalloc ulong[4];
        if (!Consume(d)) { e = default; return false; }
        e = SmmuEvent.Decode(d);
        return true;
    }
}

/// <summary>A PRI page request (SMMUv3 §8.1, 16 bytes; Linux's PRIQ_* fields): dword0 StreamID[31:0]
/// SubstreamID[51:32] READ[60] WRITE[61] PRG_LAST[62] SSID_V[63]; dword1 PRG index[8:0] address[63:12].</summary>
public readonly record struct PriRequest(uint Sid, uint Ssid, bool SubstreamValid, ushort Prgi, bool Last, bool Read, bool Write, ulong Address)
{
    public const int Bytes = 16;
}

/// <summary>The PRI queue: page requests from ATS devices that software answers with CMD_PRI_RESP.</summary>
public sealed class PriQueue(ISmmuTableMemory memory, int log2Size) : OutputQueue(memory, log2Size, PriRequest.Bytes)
{
    public bool Record(in PriRequest r)
    {
        Span<ulong> d = stackalloc ulong[2];
        d[0] = r.Sid | (((ulong)r.Ssid & 0xFFFFF) << 32) | (r.Read ? 1UL << 60 : 0) | (r.Write ? 1UL << 61 : 0)
             | (r.Last ? 1UL << 62 : 0) | (r.SubstreamValid ? 1UL << 63 : 0);
        d[1] = ((ulong)r.Prgi & 0x1FF) | (r.Address & ~0xFFFUL);
        return Produce(d);
    }

    public bool TryRead(out PriRequest r)
    {
        Span<ulong> d = stackalloc ulong[2];
        if (!Consume(d)) { r = default; return false; }
        r = new PriRequest((uint)d[0], (uint)((d[0] >> 32) & 0xFFFFF), ((d[0] >> 63) & 1) != 0, (ushort)(d[1] & 0x1FF),
            ((d[0] >> 62) & 1) != 0, ((d[0] >> 60) & 1) != 0, ((d[0] >> 61) & 1) != 0, d[1] & ~0xFFFUL);
        return true;
    }
}
