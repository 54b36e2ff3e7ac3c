namespace IommuSim.Engine.Scheduling;

/// <summary>
/// Fixed-size chunks of <typeparamref name="T"/> for the scheduler's bucket lists: chunk c holds items
/// [c &lt;&lt; ChunkShift, (c + 1) &lt;&lt; ChunkShift). Free chunks are linked through <see cref="Next"/>, so taking
/// and returning chunks allocates nothing once the store has grown to its working size.
/// </summary>
internal sealed class ChunkStore<T>
    where T : struct
{
    public const int ChunkShift = 4;          // 16 items per chunk: 768 bytes of event records, 384 of entries
    public const int ChunkSize = 1 << ChunkShift;
    public const int ChunkMask = ChunkSize - 1;
    public const int None = -1;

    public T[] Items;
    public int[] Next;
    private int _free = None;
    private int _freeCount;

    public ChunkStore(int chunks)
    {
        Items = new T[chunks << ChunkShift];
        Next = new int[chunks];
        PushFree(0, chunks);
    }

    public int FreeCount => _freeCount;

    public static int ChunksFor(int items) => (items + ChunkMask) >> ChunkShift;

    /// <summary>Takes a free chunk (growing the store when there is none), with no successor.</summary>
    public int Take()
    {
        if (_free == None) Grow();
        int chunk = _free;
        _free = Next[chunk];
        Next[chunk] = None;
        _freeCount--;
        return chunk;
    }

    /// <summary>Returns the list of <paramref name="chunks"/> chunks from <paramref name="head"/> to <paramref name="tail"/>.</summary>
    public void Recycle(int head, int tail, int chunks)
    {
        Next[tail] = _free;
        _free = head;
        _freeCount += chunks;
    }

    /// <summary>Grows until at least <paramref name="chunks"/> are free, so that references into
    /// <see cref="Items"/> stay valid while that many are taken.</summary>
    public void Reserve(int chunks)
    {
        while (_freeCount < chunks) Grow();
    }

    /// <summary>Every chunk free again and every item cleared (dropping references).</summary>
    public void Clear()
    {
        Array.Clear(Items);
        _free = None;
        _freeCount = 0;
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
        _freeCount += to - from;
    }
}
