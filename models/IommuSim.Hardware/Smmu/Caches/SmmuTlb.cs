using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Smmu.Caches;

/// <summary>A TLB hit: the output address, what the entry allows (both stages) and what stage 1 alone allows
/// (so a refused access can be reported against the stage that refused it).</summary>
public readonly record struct SmmuTlbHit(int Index, ulong OutputAddress, Access Access, Access Stage1Access, int SizeShift, bool Dirty);

/// <summary>
/// The SMMU's main TLB: sets × ways of translations tagged by VMID and, for stage-1 (and nested,
/// combined) entries, ASID; stage-2-only entries are tagged by VMID alone. An entry covers one leaf
/// of its size (4K, 16K, 64K pages; 2M, 32M, 512M, 1G blocks; a nested entry the smaller of its two
/// leaves); lookups probe each size present. LRU replacement (gem5 uses round robin).
/// Invalidation follows the TLBI commands: by ASID, by VA (optionally leaf-only), by VMID (all
/// stage-1 entries), by IPA (stage-2-only entries), all of a VMID, everything. An entry remembers the
/// leaf size of the stage an address TLBI targets (stage 1 for stage-1 and nested entries, stage 2 for
/// stage-2-only ones), so a range TLBI's TTL keeps the leaves of other levels, as the spec allows.
/// </summary>
public sealed class SmmuTlb : IResettable
{
    private readonly int _ways, _setMask;
    private readonly Entry[] _entries;
    private readonly int[] _bySize = new int[64];
    private ulong _sizesPresent; // bit s: entries of size 2^s exist
    private long _clock;

    public SmmuTlb(SmmuTlbOptions options)
    {
        _ways = Math.Max(1, options.Ways);
        int sets = options.Entries / _ways;
        _setMask = Math.Max(1, sets) - 1;
        _entries = new Entry[options.Entries <= 0 ? 0 : options.Entries];
    }

    public int Capacity => _entries.Length;
    public long Lookups { get; private set; }
    public long Hits { get; private set; }
    public long Misses { get; private set; }
    public long Evictions { get; private set; }
    public long InvalidatedEntries { get; private set; }

    public int Occupancy
    {
        get
        {
            int n = 0;
            foreach (int c in _bySize) n += c;
            return n;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool Lookup(ushort vmid, ushort asid, bool stage1, ulong address, out SmmuTlbHit hit)
    {
        Lookups++;
        if (Probe(vmid, asid, stage1, address, out int i))
        {
            Hits++;
            ref Entry e = ref _entries[i];
            e.Stamp = ++_clock;
            ulong mask = (1UL << e.SizeShift) - 1;
            hit = new SmmuTlbHit(i, e.OutBase | (address & mask), e.Access, e.S1Access, e.SizeShift, e.Dirty);
            return true;
        }
        Misses++;
        hit = default;
        return false;
    }

    /// <summary>Lookup without statistics or replacement update.</summary>
    public bool Contains(ushort vmid, ushort asid, bool stage1, ulong address) => Probe(vmid, asid, stage1, address, out _);

    public void MarkDirty(int index) => _entries[index].Dirty = true;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Insert(ushort vmid, ushort asid, bool stage1, ulong address, int sizeShift, ulong outputAddress, Access access, bool dirty,
        Access stage1Access = Access.ReadWrite, int levelShift = 0)
    {
        if (_entries.Length == 0) return;
        ulong vpn = address >> sizeShift;
        int baseIdx = (int)(vpn & (ulong)_setMask) * _ways;
        int victim = -1;
        for (int w = 0; w < _ways; w++)
        {
            ref Entry e = ref _entries[baseIdx + w];
            if (e.Valid && e.Vpn == vpn && e.SizeShift == sizeShift && e.Vmid == vmid && e.Stage1 == stage1 && (!stage1 || e.Asid == asid))
            {
                victim = baseIdx + w;
                Remove(ref e);
                break;
            }
            if (!e.Valid && victim < 0) victim = baseIdx + w;
        }
        if (victim < 0)
        {
            victim = baseIdx;
            for (int w = 1; w < _ways; w++)
                if (_entries[baseIdx + w].Stamp < _entries[victim].Stamp) victim = baseIdx + w;
            Evictions++;
            Remove(ref _entries[victim]);
        }
        _entries[victim] = new Entry
        {
            Valid = true, Vmid = vmid, Asid = stage1 ? asid : (ushort)0, Stage1 = stage1, Vpn = vpn, SizeShift = (byte)sizeShift,
            OutBase = outputAddress & ~((1UL << sizeShift) - 1), Access = access, S1Access = stage1Access, Dirty = dirty, Stamp = ++_clock,
            LevelShift = (byte)(levelShift == 0 ? sizeShift : levelShift),
        };
        _bySize[sizeShift]++;
        _sizesPresent |= 1UL << sizeShift;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool Probe(ushort vmid, ushort asid, bool stage1, ulong address, out int index)
    {
        ulong sizes = _sizesPresent;
        while (sizes != 0)
        {
            int shift = System.Numerics.BitOperations.TrailingZeroCount(sizes);
            sizes &= sizes - 1;
            ulong vpn = address >> shift;
            int baseIdx = (int)(vpn & (ulong)_setMask) * _ways;
            for (int w = 0; w < _ways; w++)
            {
                ref Entry e = ref _entries[baseIdx + w];
                if (e.Valid && e.Vpn == vpn && e.SizeShift == shift && e.Vmid == vmid && e.Stage1 == stage1 && (!stage1 || e.Asid == asid))
                {
                    index = baseIdx + w;
                    return true;
                }
            }
        }
        index = -1;
        return false;
    }

    private void Remove(ref Entry e)
    {
        if (!e.Valid) return;
        e.Valid = false;
        if (--_bySize[e.SizeShift] == 0) _sizesPresent &= ~(1UL << e.SizeShift);
    }

    /// <summary>CMD_TLBI_NH_ASID: stage-1 entries of one ASID in one VMID.</summary>
    public int InvalidateAsid(ushort vmid, ushort asid) => InvalidateWhere(new(vmid, asid, Kind.Asid, 0, 0));

    /// <summary>CMD_TLBI_NH_VA (and NH_VAA when <paramref name="asid"/> is null): stage-1 entries overlapping [first, last];
    /// with <paramref name="ttlLeafShift"/> ≠ 0 (a range TLBI's TTL) only those whose stage-1 leaf has that size.</summary>
    public int InvalidateVa(ushort vmid, ushort? asid, ulong first, ulong last, int ttlLeafShift = 0)
        => InvalidateWhere(new(vmid, asid ?? 0, asid is null ? Kind.VaAnyAsid : Kind.Va, first, last, (byte)ttlLeafShift));

    /// <summary>CMD_TLBI_NH_ALL: every stage-1 entry of the VMID.</summary>
    public int InvalidateStage1(ushort vmid) => InvalidateWhere(new(vmid, 0, Kind.Stage1OfVmid, 0, 0));

    /// <summary>CMD_TLBI_S2_IPA: stage-2-only entries covering [first, last] (combined entries need NH_ALL / S12_VMALL).</summary>
    public int InvalidateIpa(ushort vmid, ulong first, ulong last, int ttlLeafShift = 0)
        => InvalidateWhere(new(vmid, 0, Kind.Ipa, first, last, (byte)ttlLeafShift));

    /// <summary>CMD_TLBI_S12_VMALL: everything tagged with the VMID.</summary>
    public int InvalidateVmid(ushort vmid) => InvalidateWhere(new(vmid, 0, Kind.Vmid, 0, 0));

    /// <summary>CMD_TLBI_NSNH_ALL.</summary>
    public int InvalidateAll() => InvalidateWhere(new(0, 0, Kind.All, 0, 0));

    private enum Kind : byte { Asid, Va, VaAnyAsid, Stage1OfVmid, Ipa, Vmid, All }

    private readonly record struct Filter(ushort Vmid, ushort Asid, Kind Kind, ulong First, ulong Last, byte LevelShift = 0);

    private int InvalidateWhere(Filter f)
    {
        int n = 0;
        for (int i = 0; i < _entries.Length; i++)
        {
            ref Entry e = ref _entries[i];
            if (!e.Valid || !Matches(e, f)) continue;
            Remove(ref e);
            n++;
        }
        InvalidatedEntries += n;
        return n;
    }

    private static bool Matches(in Entry e, in Filter f)
    {
        if (f.Kind == Kind.All) return true;
        if (e.Vmid != f.Vmid) return false;
        ulong start = e.Vpn << e.SizeShift, end = start + ((1UL << e.SizeShift) - 1);
        bool overlaps = start <= f.Last && end >= f.First && (f.LevelShift == 0 || e.LevelShift == f.LevelShift);
        return f.Kind switch
        {
            Kind.Asid => e.Stage1 && e.Asid == f.Asid,
            Kind.Va => e.Stage1 && e.Asid == f.Asid && overlaps,
            Kind.VaAnyAsid => e.Stage1 && overlaps,
            Kind.Stage1OfVmid => e.Stage1,
            Kind.Ipa => !e.Stage1 && overlaps,
            _ => true,
        };
    }

    public void Reset() => Lookups = Hits = Misses = Evictions = InvalidatedEntries = 0;

    private struct Entry
    {
        public bool Valid;
        public bool Stage1;
        public bool Dirty;
        public byte SizeShift;
        public byte LevelShift; // leaf size of the stage address TLBIs name (TTL matching)
        public Access Access;
        public Access S1Access;
        public ushort Vmid;
        public ushort Asid;
        public ulong Vpn;
        public ulong OutBase;
        public long Stamp;
    }
}
