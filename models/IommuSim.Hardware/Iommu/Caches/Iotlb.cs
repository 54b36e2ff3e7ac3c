using System.Runtime.CompilerServices;
using IommuSim.Engine.Rng;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Iommu.Caches;

/// <summary>
/// The IOTLB (VT-d spec §6.2.4): final translations tagged by (DID, PASID, page number), each with its leaf page
/// size (4K/2M/1G) and rights. Set-associative: the set index is the page number at the entry's
/// page size modulo the number of sets, so a lookup probes one set per page size in use.
/// Replacement: lru, plru (tree pseudo-LRU), fifo or random.
/// </summary>
public sealed class Iotlb : IResettable
{
    private readonly int _sets, _ways, _setMask;
    private readonly Entry[] _entries;
    private readonly ulong[] _plruBits;
    private readonly Policy _policy;
    private readonly SimRandom _rng;
    private readonly int[] _entriesBySize = new int[3];
    private long _clock;

    public Iotlb(IotlbOptions options, SimRandom rng)
    {
        _sets = options.Sets;
        _ways = options.Ways;
        _setMask = _sets - 1;
        _entries = new Entry[_sets * _ways];
        _plruBits = new ulong[_sets];
        _policy = options.Replacement switch
        {
            "lru" => Policy.Lru,
            "plru" => Policy.Plru,
            "fifo" => Policy.Fifo,
            "random" => Policy.Random,
            _ => throw new ArgumentException($"unknown replacement policy '{options.Replacement}'"),
        };
        _rng = rng;
    }

    public int Capacity => _entries.Length;

    public long Lookups { get; private set; }
    public long Hits { get; private set; }
    public long Misses { get; private set; }
    public long Evictions { get; private set; }
    public long InvalidatedEntries { get; private set; }

    /// <summary>Valid entries now.</summary>
    public int Occupancy => _entriesBySize[0] + _entriesBySize[1] + _entriesBySize[2];

    /// <summary>Finds the translation of <paramref name="iova"/>; counts a lookup and a hit or miss.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool Lookup(ushort did, uint pasid, ulong iova, out IotlbHit hit)
    {
        Lookups++;
        if (Probe(did, pasid, iova, out int idx))
        {
            Hits++;
            Touch(idx);
            ref Entry e = ref _entries[idx];
            ulong mask = (1UL << e.SizeShift) - 1;
            hit = new IotlbHit(idx, (e.OutBase & ~mask) | (iova & mask), e.Access, (PageSize)e.SizeShift, e.LeafEntryAddress, e.Dirty);
            return true;
        }
        Misses++;
        hit = default;
        return false;
    }

    /// <summary>Re-reads an entry for a request already counted as a miss (it waited while the entry was filled):
    /// updates replacement state but not the lookup statistics.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool Refetch(ushort did, uint pasid, ulong iova, out IotlbHit hit)
    {
        if (Probe(did, pasid, iova, out int idx))
        {
            Touch(idx);
            ref Entry e = ref _entries[idx];
            ulong mask = (1UL << e.SizeShift) - 1;
            hit = new IotlbHit(idx, (e.OutBase & ~mask) | (iova & mask), e.Access, (PageSize)e.SizeShift, e.LeafEntryAddress, e.Dirty);
            return true;
        }
        hit = default;
        return false;
    }

    /// <summary>Lookup without touching stats or replacement state (for checks and tests).</summary>
    public bool Contains(ushort did, uint pasid, ulong iova) => Probe(did, pasid, iova, out _);

    /// <summary>Marks an entry's page dirty (after the hardware set the D bit for a write hit).</summary>
    public void MarkDirty(int index) => _entries[index].Dirty = true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Insert(ushort did, uint pasid, ulong iova, PageSize size, ulong outBase, Access access, ulong leafEntryAddress, bool dirty)
    {
        int shift = (int)size;
        ulong vpn = iova >> shift;
        int set = (int)(vpn & (ulong)_setMask);
        int baseIdx = set * _ways;
        int victim = -1;
        for (int w = 0; w < _ways; w++)
        {
            ref Entry e = ref _entries[baseIdx + w];
            if (e.Valid && e.Did == did && e.Pasid == pasid && e.SizeShift == shift && e.Vpn == vpn)
            {
                victim = baseIdx + w; // refill of an existing tag (e.g. after a coalesced walk)
                _entriesBySize[SizeSlot(shift)]--;
                break;
            }
            if (!e.Valid && victim < 0) victim = baseIdx + w;
        }
        if (victim < 0)
        {
            victim = baseIdx + ChooseVictim(set);
            Evictions++;
            _entriesBySize[SizeSlot(_entries[victim].SizeShift)]--;
        }
        _entries[victim] = new Entry
        {
            Valid = true, Did = did, Pasid = pasid, Vpn = vpn, SizeShift = (byte)shift,
            OutBase = outBase & ~((1UL << shift) - 1), Access = access, LeafEntryAddress = leafEntryAddress,
            Dirty = dirty, Stamp = ++_clock,
        };
        _entriesBySize[SizeSlot(shift)]++;
        if (_policy == Policy.Plru) PlruTouch(set, victim - baseIdx);
    }

    public int InvalidateAll() => InvalidateWhere(static (in Entry _, in Filter _) => true, default);

    public int InvalidateDomain(ushort did)
        => InvalidateWhere(static (in Entry e, in Filter f) => e.Did == f.Did, new Filter(did, 0, false, 0, 0));

    /// <summary>Entries of a domain (optionally one PASID) whose page overlaps [first, last].</summary>
    public int InvalidateRange(ushort did, uint? pasid, ulong first, ulong last)
        => InvalidateWhere(static (in Entry e, in Filter f) =>
        {
            if (e.Did != f.Did || (f.MatchPasid && e.Pasid != f.Pasid)) return false;
            ulong start = e.Vpn << e.SizeShift;
            ulong end = start + ((1UL << e.SizeShift) - 1);
            return start <= f.Last && end >= f.First;
        }, new Filter(did, pasid ?? 0, pasid.HasValue, first, last));

    public int InvalidatePasid(ushort did, uint pasid)
        => InvalidateWhere(static (in Entry e, in Filter f) => e.Did == f.Did && e.Pasid == f.Pasid, new Filter(did, pasid, true, 0, 0));

    public void Reset()
    {
        Lookups = Hits = Misses = Evictions = InvalidatedEntries = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private bool Probe(ushort did, uint pasid, ulong iova, out int index)
    {
        // Probe each page size that has entries; 4K first (the common case).
        for (int slot = 0; slot < 3; slot++)
        {
            if (_entriesBySize[slot] == 0) continue;
            int shift = 12 + 9 * slot;
            ulong vpn = iova >> shift;
            int baseIdx = (int)(vpn & (ulong)_setMask) * _ways;
            for (int w = 0; w < _ways; w++)
            {
                ref Entry e = ref _entries[baseIdx + w];
                if (e.Valid && e.Vpn == vpn && e.SizeShift == shift && e.Did == did && e.Pasid == pasid)
                {
                    index = baseIdx + w;
                    return true;
                }
            }
        }
        index = -1;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Touch(int idx)
    {
        switch (_policy)
        {
            case Policy.Lru: _entries[idx].Stamp = ++_clock; break;
            case Policy.Plru: PlruTouch(idx / _ways, idx % _ways); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private int ChooseVictim(int set)
    {
        int baseIdx = set * _ways;
        switch (_policy)
        {
            case Policy.Random:
                return (int)_rng.NextBelow((ulong)_ways);
            case Policy.Plru:
                return PlruVictim(set);
            default: // lru and fifo: oldest stamp (fifo stamps only on insert)
                int best = 0;
                long bestStamp = long.MaxValue;
                for (int w = 0; w < _ways; w++)
                {
                    long s = _entries[baseIdx + w].Stamp;
                    if (s < bestStamp) { bestStamp = s; best = w; }
                }
                return best;
        }
    }

    // Tree PLRU: node i has children 2i+1, 2i+2; bit = 1 means "the victim is in the right half".
    private void PlruTouch(int set, int way)
    {
        if (_ways == 1) return;
        ulong bits = _plruBits[set];
        int node = 0, lo = 0, hi = _ways;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (way < mid) { bits |= 1UL << node; node = 2 * node + 1; hi = mid; }
            else { bits &= ~(1UL << node); node = 2 * node + 2; lo = mid; }
        }
        _plruBits[set] = bits;
    }

    private int PlruVictim(int set)
    {
        ulong bits = _plruBits[set];
        int node = 0, lo = 0, hi = _ways;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if ((bits & (1UL << node)) != 0) { node = 2 * node + 2; lo = mid; }
            else { node = 2 * node + 1; hi = mid; }
        }
        return lo;
    }

    private delegate bool Match(in Entry e, in Filter f);

    private int InvalidateWhere(Match match, Filter filter)
    {
        int n = 0;
        for (int i = 0; i < _entries.Length; i++)
        {
            ref Entry e = ref _entries[i];
            if (e.Valid && match(e, filter))
            {
                e.Valid = false;
                _entriesBySize[SizeSlot(e.SizeShift)]--;
                n++;
            }
        }
        InvalidatedEntries += n;
        return n;
    }

    private static int SizeSlot(int shift) => (shift - 12) / 9;

    private readonly record struct Filter(ushort Did, uint Pasid, bool MatchPasid, ulong First, ulong Last);

    private struct Entry
    {
        public bool Valid;
        public byte SizeShift;
        public Access Access;
        public bool Dirty;
        public ushort Did;
        public uint Pasid;
        public ulong Vpn;
        public ulong OutBase;
        public ulong LeafEntryAddress;
        public long Stamp;
    }

    private enum Policy : byte { Lru, Plru, Fifo, Random }
}

/// <summary>Result of an IOTLB hit: the translated address and the entry's attributes.</summary>
public readonly record struct IotlbHit(int Index, ulong PhysicalAddress, Access Access, PageSize Size, ulong LeafEntryAddress, bool Dirty);
