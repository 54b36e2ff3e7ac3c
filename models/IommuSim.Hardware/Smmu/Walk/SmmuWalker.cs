using System.Runtime.CompilerServices;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Caches;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Walk;

namespace IommuSim.Hardware.Smmu.Walk;

/// <summary>Receives finished walks (the SMMU's translation pipeline).</summary>
public interface ISmmuWalkCompletion
{
    /// <summary>A transaction whose walk finished (translated or faulted); once per waiter.</summary>
    void OnWalkDone(SmmuTransaction t);
    /// <summary>Before a queued miss starts its walk: true when the TLB now holds it.</summary>
    bool TryCompleteFromTlb(SmmuTransaction t);
}

/// <summary>
/// The SMMU's table-walk unit: <c>walkers.count</c> concurrent VMSAv8-64 walks, one descriptor
/// read per event (latency from the memory model). Stage 1 alone, stage 2 alone, or nested: every
/// stage-1 descriptor address and the final output IPA go through stage 2. Walk caches skip upper
/// levels and the IPA cache skips stage-2 walks of table addresses. A cold walk with caches off
/// reads n descriptors (n levels, one stage) or n(m+1) + m (nested, n stage-1 and m stage-2 levels).
/// Hardware access-flag and dirty-state updates (HTTU, CD.HA/HD, STE.S2HA/S2HD) write the leaf.
/// </summary>
public sealed class SmmuWalker : IEventHandler, IResettable
{
    private const int KindS1Read = WalkEventKinds.Stage1Read;
    private const int KindS2Read = WalkEventKinds.Stage2Read;

    private readonly SmmuWalkCaches _caches;
    private readonly SmmuTlb _tlb;
    private readonly PhysicalMemory _mem;
    private readonly int _cacheLookupCycles;
    private readonly WalkerSlots<SmmuWalk, SmmuTransaction, Ops> _slots;

    public SmmuWalker(SmmuWalkerOptions options, SmmuWalkCaches caches, SmmuTlb tlb, PhysicalMemory mem, MemoryTimingModel timing,
        Scheduler sched, ClockDomain clock, int cacheLookupCycles, ISmmuWalkCompletion owner)
    {
        _caches = caches;
        _tlb = tlb;
        _mem = mem;
        _cacheLookupCycles = caches.Enabled ? cacheLookupCycles : 0;
        _slots = new WalkerSlots<SmmuWalk, SmmuTransaction, Ops>(options.Count, options.Coalesce, mem, timing, sched, clock, this, "smmu.");
        _slots.Ops = new Ops(this, owner);
    }

    public long Count => _slots.Count;
    public long Coalesced => _slots.Coalesced;
    public long Queued => _slots.Queued;
    public long Stage1Reads => _slots.Stage1Reads;
    public long Stage2Reads => _slots.Stage2Reads;
    public long HardwareUpdates { get; private set; }
    public LatencyHistogram WalkReads => _slots.WalkReads;
    public LatencyHistogram WalkLatency => _slots.WalkLatency;
    /// <summary>Hooks (statistics, tracing), set by the SMMU.</summary>
    internal HardwareObserver? Observer { get => _slots.Observer; set => _slots.Observer = value; }

    /// <summary>Handles a TLB miss: join, start or queue a walk.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Submit(SmmuTransaction t) => _slots.Submit(t);

    /// <summary>The first step of a walk a walker just took.</summary>
    private void Begin(SmmuWalk w)
    {
        ref readonly var c = ref w.Config;
        if (c.Stage1)
        {
            var cd = c.Cd;
            if (cd.Epd0) { Fault(w, SmmuEventType.Translation, false); return; }
            if (w.Address >> cd.InputBits != 0) { Fault(w, SmmuEventType.Translation, false); return; }
            var (level, table) = _caches.Lookup(SmmuStage.Stage1, c.Vmid, c.Asid, cd.Tg0, cd.StartLevel, w.Address, cd.Ttb0);
            w.S1Level = level;
            w.S1TableIpa = table;
            NextStage1Read(w, _cacheLookupCycles);
        }
        else BeginStage2(w, SmmuS2Purpose.Final, w.Address, 0);
    }

    /// <summary>Reads the stage-1 descriptor of the current level, first translating its IPA when nested.</summary>
    private void NextStage1Read(SmmuWalk w, int extraCycles)
    {
        var cd = w.Config.Cd;
        ulong entryIpa = w.S1TableIpa + 8UL * (ulong)cd.Tg0.IndexAt(w.Address, w.S1Level, cd.StartLevel, cd.InputBits);
        if (!w.Config.Stage2)
        {
            w.S1EntryPa = entryIpa;
            IssueRead(w, entryIpa, KindS1Read, extraCycles);
        }
        else if (_caches.LookupIpa(w.Config.Vmid, entryIpa, out var hit))
        {
            w.S1EntryPa = (hit.PaPage << 12) | (entryIpa & 0xFFF);
            IssueRead(w, w.S1EntryPa, KindS1Read, extraCycles);
        }
        else BeginStage2(w, SmmuS2Purpose.Stage1Table, entryIpa, extraCycles);
    }

    private void BeginStage2(SmmuWalk w, SmmuS2Purpose purpose, ulong ipa, int extraCycles)
    {
        var ste = w.Config.Ste;
        if (ipa >> ste.S2InputBits != 0)
        {
            w.FaultIpa = ipa;
            w.FaultOnTableWalk = purpose == SmmuS2Purpose.Stage1Table;
            Fault(w, SmmuEventType.AddressSize, true);
            return;
        }
        w.Purpose = purpose;
        w.S2Input = ipa;
        w.S2Rights = Access.ReadWrite;
        var (level, table) = _caches.Lookup(SmmuStage.Stage2, ste.S2Vmid, 0, ste.S2Granule, ste.S2StartLevel, ipa, ste.S2Ttb);
        w.S2Level = level;
        w.S2Table = table;
        IssueRead(w, table + 8UL * (ulong)ste.S2Granule.IndexAt(ipa, level, ste.S2StartLevel, ste.S2InputBits), KindS2Read,
            extraCycles + _cacheLookupCycles);
    }

    private void IssueRead(SmmuWalk w, ulong entryAddress, int kind, int extraCycles) => _slots.IssueRead(w, entryAddress, kind, extraCycles);

    public void OnEvent(int kind, long arg, object? payload)
    {
        var w = (SmmuWalk)payload!;
        if (kind == WalkEventKinds.Issue)
        {
            _slots.IssuePending(w);
            return;
        }
        w.Reads++;
        if (kind == KindS1Read) OnStage1Descriptor(w);
        else OnStage2Descriptor(w);
    }

    private void OnStage1Descriptor(SmmuWalk w)
    {
        _slots.Stage1Reads++;
        ulong d = w.PendingValue;
        var cd = w.Config.Cd;
        if (!VmsaDescriptor.IsValid(d)) { Fault(w, SmmuEventType.Translation, false); return; }
        if (!VmsaDescriptor.IsLeaf(d, w.S1Level))
        {
            ulong next = VmsaDescriptor.TableAddress(d, cd.Tg0);
            _caches.Fill(SmmuStage.Stage1, w.Config.Vmid, w.Config.Asid, cd.Tg0, w.S1Level, w.Address, next);
            w.S1Level++;
            w.S1TableIpa = next;
            NextStage1Read(w, 0);
            return;
        }
        if (w.S1Level < 3 && !cd.Tg0.LeafAllowed(w.S1Level)) { Fault(w, SmmuEventType.Translation, false); return; }
        if (!UpdateAccessFlag(w, ref d, cd.HardwareAccess)) { Fault(w, SmmuEventType.AccessFlag, false); return; }
        w.S1Rights = VmsaDescriptor.Permissions(SmmuStage.Stage1, d, cd.HardwareDirty);
        w.S1LeafShift = cd.Tg0.LeafShift(w.S1Level);
        w.S1LeafPa = w.PendingAddress;
        w.HasS1Leaf = true;
        ulong outIpa = VmsaDescriptor.LeafBase(d, w.S1LeafShift) | (w.Address & ((1UL << w.S1LeafShift) - 1));
        if (w.Config.Stage2) BeginStage2(w, SmmuS2Purpose.Final, outIpa, 0);
        else
        {
            w.OutputAddress = outIpa;
            Complete(w);
        }
    }

    private void OnStage2Descriptor(SmmuWalk w)
    {
        _slots.Stage2Reads++;
        ulong d = w.PendingValue;
        var ste = w.Config.Ste;
        if (!VmsaDescriptor.IsValid(d) || (!VmsaDescriptor.IsLeaf(d, w.S2Level) ? false : w.S2Level < 3 && !ste.S2Granule.LeafAllowed(w.S2Level)))
        {
            Stage2Fault(w, SmmuEventType.Translation);
            return;
        }
        if (!VmsaDescriptor.IsLeaf(d, w.S2Level))
        {
            ulong next = VmsaDescriptor.TableAddress(d, ste.S2Granule);
            _caches.Fill(SmmuStage.Stage2, ste.S2Vmid, 0, ste.S2Granule, w.S2Level, w.S2Input, next);
            w.S2Level++;
            w.S2Table = next;
            IssueRead(w, next + 8UL * (ulong)ste.S2Granule.IndexAt(w.S2Input, w.S2Level, ste.S2StartLevel, ste.S2InputBits), KindS2Read, 0);
            return;
        }
        if (!UpdateAccessFlag(w, ref d, ste.S2HardwareAccess)) { Stage2Fault(w, SmmuEventType.AccessFlag); return; }
        var rights = VmsaDescriptor.Permissions(SmmuStage.Stage2, d, ste.S2HardwareDirty);
        int shift = ste.S2Granule.LeafShift(w.S2Level);
        ulong pa = VmsaDescriptor.LeafBase(d, shift) | (w.S2Input & ((1UL << shift) - 1));
        if (w.Purpose == SmmuS2Purpose.Stage1Table)
        {
            // The SMMU reads stage-1 tables: stage 2 must allow reads of them (S2PTW-style check).
            if ((rights & Access.Read) == 0) { Stage2Fault(w, SmmuEventType.Permission); return; }
            _caches.FillIpa(ste.S2Vmid, w.S2Input, pa, rights);
            w.S1EntryPa = pa;
            IssueRead(w, pa, KindS1Read, 0);
            return;
        }
        w.S2Rights = rights;
        w.S2LeafShift = shift;
        w.S2LeafPa = w.PendingAddress;
        w.HasS2Leaf = true;
        w.OutputAddress = pa;
        Complete(w);
    }

    /// <summary>A leaf with AF clear: hardware sets it when HA is on (HTTU), else an access-flag fault.</summary>
    private bool UpdateAccessFlag(SmmuWalk w, ref ulong d, bool hardwareAccess)
    {
        if ((d & VmsaDescriptor.AccessFlag) != 0) return true;
        if (!hardwareAccess) return false;
        d |= VmsaDescriptor.AccessFlag;
        _mem.WriteU64(w.PendingAddress, d);
        HardwareUpdates++;
        return true;
    }

    private void Stage2Fault(SmmuWalk w, SmmuEventType type)
    {
        w.FaultIpa = w.S2Input;
        w.FaultOnTableWalk = w.Purpose == SmmuS2Purpose.Stage1Table;
        Fault(w, type, true);
    }

    private void Complete(SmmuWalk w)
    {
        int shift = Math.Min(w.S1LeafShift, w.S2LeafShift);
        Access rights = (w.HasS1Leaf ? w.S1Rights : Access.ReadWrite) & (w.HasS2Leaf ? w.S2Rights : Access.ReadWrite);
        bool dirty = false;
        if (w.AnyWrite && (rights & Access.Write) != 0)
        {
            // Hardware dirty state: the first write through a writable-clean leaf makes it dirty.
            if (w.HasS1Leaf) dirty |= MarkDirty(SmmuStage.Stage1, w.S1LeafPa, w.Config.Cd.HardwareDirty);
            if (w.HasS2Leaf) dirty |= MarkDirty(SmmuStage.Stage2, w.S2LeafPa, w.Config.Ste.S2HardwareDirty);
            dirty = true;
        }
        ulong mask = (1UL << shift) - 1;
        _tlb.Insert(w.Config.Vmid, w.Config.Asid, w.Config.Stage1, w.Address, shift, w.OutputAddress & ~mask, rights, dirty,
            w.HasS1Leaf ? w.S1Rights : Access.ReadWrite, w.HasS1Leaf ? w.S1LeafShift : shift);
        _slots.Finish(w, rights, w.Reads);
    }

    private bool MarkDirty(SmmuStage stage, ulong leafPa, bool hardwareDirty)
    {
        ulong d = _mem.ReadU64(leafPa);
        if (!hardwareDirty || (d & VmsaDescriptor.DirtyBitModifier) == 0 || VmsaDescriptor.IsDirty(stage, d)) return false;
        _mem.WriteU64(leafPa, VmsaDescriptor.MarkDirty(stage, d));
        HardwareUpdates++;
        return true;
    }

    private void Fault(SmmuWalk w, SmmuEventType type, bool stage2)
    {
        w.Faulted = true;
        w.Fault = type;
        w.FaultInStage2 = stage2;
        _slots.Finish(w, Access.None, w.Reads);
    }

    public void Reset()
    {
        HardwareUpdates = 0;
        _slots.Reset();
    }

    /// <summary>The SMMU side of the walker slots: transactions linked through <see cref="SmmuTransaction.Next"/>.</summary>
    private readonly struct Ops(SmmuWalker walker, ISmmuWalkCompletion owner) : IWalkerOps<SmmuWalk, SmmuTransaction>
    {
        public SmmuTransaction? GetNext(SmmuTransaction r) => r.Next;
        public void SetNext(SmmuTransaction r, SmmuTransaction? next) => r.Next = next;
        public bool IsWrite(SmmuTransaction r) => r.IsWrite;
        public bool Covers(SmmuWalk w, SmmuTransaction r) => w.Covers(r.Config, r.Address);
        public void Init(SmmuWalk w, SmmuTransaction first) => w.Init(first);
        public void Begin(SmmuWalk w) => walker.Begin(w);
        public void OnStarted(HardwareObserver o, int slot, SmmuTransaction r) => o.OnSmmuWalkStarted(slot, r);
        public void OnJoined(HardwareObserver o, int slot, SmmuTransaction r) => o.OnSmmuWalkJoined(slot, r);
        public void Done(SmmuTransaction r) => owner.OnWalkDone(r);
        public bool TryCompleteFromTlb(SmmuTransaction r) => owner.TryCompleteFromTlb(r);

        public void Deliver(SmmuWalk w, SmmuTransaction t, Access rights, int reads, bool first)
        {
            if (first) t.WalkReads = reads;
            if (w.Faulted)
            {
                t.Faulted = true;
                t.Fault = w.Fault;
                t.FaultInStage2 = w.FaultInStage2;
                t.FaultOnTableWalk = w.FaultOnTableWalk;
                t.FaultIpa = w.FaultIpa;
            }
            else if ((t.Access & ~rights) != 0)
            {
                t.Faulted = true;
                t.Fault = SmmuEventType.Permission;
                // Which stage refused: stage 2 when stage 1 alone would have allowed it.
                t.FaultInStage2 = w.HasS2Leaf && (t.Access & ~w.S2Rights) != 0 && (!w.HasS1Leaf || (t.Access & ~w.S1Rights) == 0);
                t.FaultIpa = t.FaultInStage2 ? w.S2Input : 0;
            }
            else t.OutputAddress = (w.OutputAddress & ~0xFFFUL) + ((t.Address & ~0xFFFUL) - (w.Address & ~0xFFFUL)) + (t.Address & 0xFFF);
        }
    }
}
