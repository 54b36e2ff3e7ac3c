using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;

namespace IommuSim.Hardware.Iommu.Caches;

/// <summary>
/// A small fully associative LRU cache (context cache, PASID cache, one paging-structure cache
/// level, the nested TLB). Small caches (up to <see cref="ScanLimit"/> entries) find keys by scanning
/// their slots, which is cheaper than hashing at these sizes; larger ones through a dictionary sized
/// once, so steady-state use does not allocate. Eviction scans for the oldest stamp.
/// </summary>
public sealed class LruCache<TKey, TValue> : IResettable where TKey : struct, IEquatable<TKey>
{
    /// <summary>Caches with at most this many entries find keys by a linear scan instead of the dictionary.</summary>
    public const int ScanLimit = 32;

    private readonly Dictionary<TKey, int>? _index; // null when scanning
    private int _count;
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
        _index = Capacity > ScanLimit ? new Dictionary<TKey, int>(Capacity) : null;
        _keys = new TKey[Capacity];
        _values = new TValue[Capacity];
        _stamps = new long[Capacity];
        _valid = new bool[Capacity];
    }

    public string Name { get; }
    public int Capacity { get; }
    public int Count => _count;
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
        int i = Find(key);
        if (i >= 0)
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

    /// <summary>Like <see cref="TryGet"/> on a hit; on a miss it changes nothing (no miss counted).
    /// The same as <see cref="Peek"/> followed, when that finds the key, by <see cref="TryGet"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryGetIfPresent(in TKey key, out TValue value)
    {
        int m = _mruSlot;
        int i = m >= 0 && _valid[m] && _keys[m].Equals(key) ? m : Find(key);
        if (i >= 0)
        {
            _mruSlot = i;
            Hits++;
            _stamps[i] = ++_clock;
            value = _values[i];
            return true;
        }
        value = default!;
        return false;
    }

    /// <summary>Slot holding <paramref name="key"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Find(in TKey key)
    {
        if (_index is null)
        {
            TKey[] keys = _keys;
            bool[] valid = _valid;
            for (int i = 0; i < keys.Length && i < valid.Length; i++)
                if (valid[i] && keys[i].Equals(key)) return i;
            return -1;
        }
        return _index.TryGetValue(key, out int slot) ? slot : -1;
    }

    /// <summary>Lookup without stats or LRU update.</summary>
    public bool Peek(in TKey key, out TValue value)
    {
        int i = Find(key);
        if (i >= 0)
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
        int slot = Find(key);
        if (slot < 0)
        {
            if (_count < Capacity)
            {
                slot = 0;
                while (_valid[slot]) slot++;
            }
            else
            {
                slot = 0;
                for (int i = 1; i < Capacity; i++)
                    if (_stamps[i] < _stamps[slot]) slot = i;
                _index?.Remove(_keys[slot]);
                _count--;
                Evictions++;
            }
            if (_index is not null) _index[key] = slot;
            _count++;
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
                _index?.Remove(_keys[i]);
                _valid[i] = false;
                _count--;
                n++;
            }
        }
        Invalidated += n;
        return n;
    }

    public int InvalidateAll()
    {
        int n = _count;
        _index?.Clear();
        _count = 0;
        Array.Clear(_valid);
        Invalidated += n;
        return n;
    }

    public void Reset() => Hits = Misses = Evictions = Invalidated = 0;
}
