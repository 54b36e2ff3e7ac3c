namespace IommuSim.Engine.Scheduling;

/// <summary>
/// Fixed-size chunks of event records for the chunked buckets of the scheduler's rung 0: chunk c holds
/// records [c &lt;&lt; ChunkShift, (c + 1) &lt;&lt; ChunkShift). Free chunks are linked through <see cref="Next"/>, so
/// taking and returning chunks allocates nothing once the store has grown to its working size.
/// </summary>
internal sealed class ChunkStore
{
    public const int ChunkShift = 4;          // 16 records (768 bytes) per chunk
    public const int ChunkSize = 1 << ChunkShift;
    public const int ChunkMask = ChunkSize - 1;
    public const int None = -1;

    public EventRecord[] Items;
    public int[] Next;
    private int _free = None;

    public ChunkStore(int chunks)
    {
        Items = new EventRecord[chunks << ChunkShift];
        Next = new int[chunks];
        PushFree(0, chunks);
    }

    public static int ChunksFor(int records) => (records + ChunkMask) >> ChunkShift;

    /// <summary>Takes a free chunk (growing the store when there is none), with no successor.</summary>
    public int Take()
    {
        if (_free == None) Grow();
        int chunk = _free;
        _free = Next[chunk];
        Next[chunk] = None;
        return chunk;
    }

    /// <summary>Returns a bucket's chunks (the list from its head to its tail) to the free list.</summary>
    public void Recycle(in ChunkList list)
    {
        Next[list.Tail] = _free;
        _free = list.Head;
    }

    /// <summary>Every chunk free again and every item cleared (dropping references).</summary>
    public void Clear()
    {
        Array.Clear(Items);
        _free = None;
        PushFree(0, Next.Length);
    }

    private void Grow()
    {
        int old = Next.Length;
        int chunks = checked(old * 2);
        Array.Resize(ref Items, checked(chunks << ChunkShift));
        Array.Resize(ref Next, chunks);
        PushFree(old, chunks);
    }

    /// <summary>Links chunks [from, to) in front of the free list, lowest first.</summary>
    private void PushFree(int from, int to)
    {
        for (int c = to - 1; c >= from; c--)
        {
            Next[c] = _free;
            _free = c;
        }
    }
}
