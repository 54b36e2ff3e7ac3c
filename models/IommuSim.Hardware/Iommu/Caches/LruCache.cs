using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;

namespace IommuSim.Hardware.Iommu.Caches;

/// <summary>
/// A small fully associative LRU cache (context cache, PASID cache, one paging-structure cache
/// level, the nested TLB). O(1) hits through a dictionary sized once, so steady-state use does
/// not allocate; eviction scans for the oldest stamp (caches are tens of entries).
/// </summary>
public sealed class LruCache<TKey, TValue> : IResettable where TKey : struct, IEquatable<TKey>
{
    private readonly Dictionary<TKey, int> _index;
    private readonly TKey[] _keys;
    private readonly TValue[] _values;
    private readonly long[] _stamps;
    private readonly bool[] _valid;
    private long _clock;
    // Most-recently-hit entry: one device streaming through one context and PASID hits it every time.
    private int _mruSlot = -1;

    public LruCache(string name, int capacity)
    {
        Name = name;
        Capacity = Math.Max(0, capacity);
        _index = new Dictionary<TKey, int>(Capacity);
        _keys = new TKey[Capacity];
        _values = new TValue[Capacity];
        _stamps = new long[Capacity];
        _valid = new bool[Capacity];
    }

    public string Name { get; }
    public int Capacity { get; }
    public int Count => _index.Count;
    public long Hits { get; private set; }
    public long Misses { get; private set; }
    public long Evictions { get; private set; }
    public long Invalidated { get; private set; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryGet(in TKey key, out TValue value)
    {
        int m = _mruSlot;
        if (m >= 0 && _valid[m] && _keys[m].Equals(key))
        {
            Hits++;
            _stamps[m] = ++_clock;
            value = _values[m];
            return true;
        }
        if (Capacity > 0 && _index.TryGetValue(key, out int i))
        {
            _mruSlot = i;
            Hits++;
            _stamps[i] = ++_clock;
            value = _values[i];
            return true;
        }
        Misses++;
        value = default!;
        return false;
    }

    /// <summary>Lookup without stats or LRU update.</summary>
    public bool Peek(in TKey key, out TValue value)
    {
        if (Capacity > 0 && _index.TryGetValue(key, out int i))
        {
            value = _values[i];
            return true;
        }
        value = default!;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Insert(in TKey key, in TValue value)
    {
        if (Capacity == 0) return;
        if (!_index.TryGetValue(key, out int slot))
        {
            if (_index.Count < Capacity)
            {
                slot = 0;
                while (_valid[slot]) slot++;
            }
            else
            {
                slot = 0;
                for (int i = 1; i < Capacity; i++)
                    if (_stamps[i] < _stamps[slot]) slot = i;
                _index.Remove(_keys[slot]);
                Evictions++;
            }
            _index[key] = slot;
            _keys[slot] = key;
            _valid[slot] = true;
        }
        _values[slot] = value;
        _stamps[slot] = ++_clock;
    }

    /// <summary>Removes every entry for which <paramref name="match"/> holds; returns how many.</summary>
    public int InvalidateWhere<TState>(TState state, Func<TKey, TValue, TState, bool> match)
    {
        int n = 0;
        for (int i = 0; i < Capacity; i++)
        {
            if (_valid[i] && match(_keys[i], _values[i], state))
            {
                _index.Remove(_keys[i]);
                _valid[i] = false;
                n++;
            }
        }
        Invalidated += n;
        return n;
    }

    public int InvalidateAll()
    {
        int n = _index.Count;
        _index.Clear();
        Array.Clear(_valid);
        Invalidated += n;
        return n;
    }

    public void Reset() => Hits = Misses = Evictions = Invalidated = 0;
}
