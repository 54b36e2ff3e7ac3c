namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// One size class of the IOVA range caches (drivers/iommu/iova.c: <c>struct iova_rcache</c>):
/// each CPU has a <c>loaded</c> and a <c>prev</c> magazine of up to <see cref="MagSize"/> pfns, and
/// full magazines go to a shared depot (a LIFO list). <see cref="Get"/> is
/// <c>__iova_rcache_get</c>, <see cref="Insert"/> <c>__iova_rcache_insert</c>. The depot's
/// shrinking work (<c>iova_depot_work_func</c>, every IOVA_DEPOT_DELAY = 100 ms, down to
/// num_online_cpus magazines) is not modelled: simulated runs are far shorter than 100 ms.
/// A CPU's two magazines are created on its first call (a domain has 64 possible CPUs and six size
/// classes); magazines are recycled through a free list, so calls allocate nothing once warm.
/// </summary>
public sealed class IovaRcache
{
    /// <summary>IOVA_MAG_SIZE: 127 pfns, so that struct iova_magazine is 1 KiB.</summary>
    public const int MagSize = 127;

    private sealed class Magazine
    {
        public readonly ulong[] Pfns = new ulong[MagSize];
        public int Size;
        public Magazine? Next; // depot / free list link (the kernel's union with size)
    }

    private readonly Magazine[] _loaded;
    private readonly Magazine[] _prev;
    private Magazine? _depot;
    private Magazine? _spare;

    public IovaRcache(int cpus)
    {
        _loaded = new Magazine[cpus];
        _prev = new Magazine[cpus];
    }

    private void EnsureCpu(int cpu)
    {
        if (_loaded[cpu] is not null) return;
        _loaded[cpu] = new Magazine();
        _prev[cpu] = new Magazine();
    }

    /// <summary>Full magazines in the depot.</summary>
    public int DepotSize { get; private set; }

    /// <summary>Pfns cached by <paramref name="cpu"/> (loaded + prev).</summary>
    public int CpuCached(int cpu) => _loaded[cpu] is null ? 0 : _loaded[cpu].Size + _prev[cpu].Size;

    /// <summary>
    /// <c>__iova_rcache_insert</c>: into this CPU's loaded magazine; if full, swap in prev if that
    /// has room; else push loaded to the depot and start a new, empty one. Always succeeds here
    /// (the kernel fails only when the GFP_ATOMIC magazine allocation fails).
    /// </summary>
    public void Insert(int cpu, ulong pfn)
    {
        EnsureCpu(cpu);
        var loaded = _loaded[cpu];
        if (loaded.Size == MagSize)
        {
            if (_prev[cpu].Size < MagSize)
            {
                _loaded[cpu] = _prev[cpu];
                _prev[cpu] = loaded;
            }
            else
            {
                loaded.Next = _depot; // iova_depot_push
                _depot = loaded;
                DepotSize++;
                _loaded[cpu] = NewMagazine();
            }
        }
        var m = _loaded[cpu];
        m.Pfns[m.Size++] = pfn; // iova_magazine_push
    }

    /// <summary>
    /// <c>__iova_rcache_get</c>: from this CPU's loaded magazine; if empty, from prev (swapped in);
    /// else the loaded magazine is freed and one is popped from the depot. Then
    /// <c>iova_magazine_pop</c>: the most recently pushed pfn at or below <paramref name="limitPfn"/>
    /// (swapped with the top). Returns 0 when there is none.
    /// </summary>
    public ulong Get(int cpu, ulong limitPfn)
    {
        EnsureCpu(cpu);
        var loaded = _loaded[cpu];
        if (loaded.Size == 0)
        {
            if (_prev[cpu].Size > 0)
            {
                _loaded[cpu] = _prev[cpu];
                _prev[cpu] = loaded;
            }
            else if (_depot is { } d)
            {
                _depot = d.Next; // iova_depot_pop
                d.Next = null;
                DepotSize--;
                Release(loaded);
                _loaded[cpu] = d;
            }
            else return 0;
        }
        return Pop(_loaded[cpu], limitPfn);
    }

    private static ulong Pop(Magazine mag, ulong limitPfn)
    {
        // Only fall back to the rbtree if we have no suitable pfns at all.
        int i = mag.Size - 1;
        while (mag.Pfns[i] > limitPfn)
        {
            if (i == 0) return 0;
            i--;
        }
        ulong pfn = mag.Pfns[i];
        mag.Pfns[i] = mag.Pfns[--mag.Size];
        return pfn;
    }

    /// <summary>
    /// free_cpu_cached_iovas for every CPU, then free_global_cached_iovas: hands every cached pfn to
    /// <paramref name="free"/> (the rbtree) and empties the magazines and the depot.
    /// </summary>
    public void FlushAll(Action<ulong> free)
    {
        for (int c = 0; c < _loaded.Length; c++)
        {
            if (_loaded[c] is null) continue;
            Drain(_loaded[c], free);
            Drain(_prev[c], free);
        }
        while (_depot is { } d)
        {
            _depot = d.Next;
            Drain(d, free);
            Release(d);
        }
        DepotSize = 0;
    }

    private static void Drain(Magazine m, Action<ulong> free)
    {
        for (int i = 0; i < m.Size; i++) free(m.Pfns[i]);
        m.Size = 0;
    }

    private Magazine NewMagazine()
    {
        if (_spare is not { } m) return new Magazine();
        _spare = m.Next;
        m.Next = null;
        m.Size = 0;
        return m;
    }

    private void Release(Magazine m)
    {
        m.Size = 0;
        m.Next = _spare;
        _spare = m;
    }
}
