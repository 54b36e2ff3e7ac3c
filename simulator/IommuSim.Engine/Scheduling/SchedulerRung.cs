using System.Numerics;
using System.Runtime.CompilerServices;

namespace IommuSim.Engine.Scheduling;

/// <summary>A bucket: <see cref="Count"/> items in a list of chunks from <see cref="Head"/> to <see cref="Tail"/>.</summary>
internal struct ChunkList
{
    public int Head;
    public int Tail;
    public int Count;
}

/// <summary>
/// One rung of the scheduler's ladder: bucket i holds the events with time &gt;&gt; Shift == BaseQ + i, for i in
/// [CurIdx, Span); buckets before CurIdx have been loaded or split. Indices are relative, so nothing overflows even
/// at time long.MaxValue.
/// </summary>
internal sealed class SchedulerRung(int capacity)
{
    /// <summary>Ends a linked bucket's list (not a reference: ~slot is never int.MinValue).</summary>
    public const int End = int.MinValue;

    public ChunkList[] Buckets = new ChunkList[capacity];  // chunked buckets
    public int[] Heads = new int[capacity];                 // linked buckets: the first record's reference, or End
    public ulong[] Bits = new ulong[(capacity + 63) >> 6]; // bit i set: bucket i is non-empty
    public long BaseQ;
    public int Shift;
    public int CurIdx;
    public int Span;

    /// <summary>Buckets are lists of records linked through <see cref="EventRecord.Next"/> (deeper rungs, and rung 0
    /// while few events are pending), not lists of chunks of records.</summary>
    public bool Linked;

    /// <summary>For rung 1: the record chunks of the rung-0 bucket it was split from, whose records its entries
    /// refer to; recycled when the rung is used up.</summary>
    public ChunkList OwnedRecords;

    /// <summary>Empty buckets [0, span) starting at baseQ &lt;&lt; shift ps.</summary>
    public void Start(long baseQ, int shift, int span, bool linked)
    {
        // Twice what is needed when growing, so that spans fluctuating around a size do not keep reallocating.
        int length = (int)BitOperations.RoundUpToPowerOf2((uint)span) * 2;
        if (Bits.Length << 6 < span) Bits = new ulong[length >> 6];
        if (linked)
        {
            if (Heads.Length < span) Heads = new int[length];
            Array.Fill(Heads, End, 0, span);
        }
        else if (Buckets.Length < span)
        {
            Buckets = new ChunkList[length];
        }
        // The chunked buckets and bits of a used-up rung are all empty (each was loaded or split); Reset clears the rest.
        BaseQ = baseQ;
        Shift = shift;
        CurIdx = 0;
        Span = span;
        Linked = linked;
        OwnedRecords = new ChunkList { Head = -1 };
    }

    /// <summary>The first non-empty bucket at or after CurIdx, with its bit cleared and CurIdx moved past it; -1 when none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int TakeNextNonEmpty()
    {
        int words = (Span + 63) >> 6;
        int w = CurIdx >> 6;
        if (w < words)
        {
            ulong word = Bits[w] & (ulong.MaxValue << CurIdx);
            while (word == 0 && ++w < words) word = Bits[w];
            if (word != 0)
            {
                int i = (w << 6) + BitOperations.TrailingZeroCount(word);
                Bits[w] = word & (word - 1); // bits below i in this word are already clear
                CurIdx = i + 1;
                return i;
            }
        }
        CurIdx = Span;
        return -1;
    }

    public void Reset()
    {
        Array.Clear(Buckets);
        Array.Clear(Bits);
        BaseQ = 0;
        Shift = CurIdx = Span = 0; // so that every time lies beyond it: events go to the far list until a spread
        OwnedRecords = new ChunkList { Head = -1 };
    }
}
