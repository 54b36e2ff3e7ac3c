using System.Runtime.CompilerServices;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Iommu.Caches;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using IommuSim.Hardware.Walk;

namespace IommuSim.Hardware.Iommu.Walk;

/// <summary>
/// The walk itself, one table-entry read per event: first-stage (VT-d spec §3.6, IA-32e format
/// entries, §9.7), second-stage (§3.7, §9.8) and nested (§3.8: every first-stage table pointer and
/// the final output go through a second-stage sub-walk, cut short by the nested TLB).
/// </summary>
internal sealed partial class PageWalker
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal void Begin(PageWalk w)
    {
        var ctx = w.Context;
        switch (ctx.Pgtt)
        {
            case Pgtt.SecondStage:
                if (w.Iova > MaxInput(ctx.SecondStageLevels)) { Fault(w, FaultReason.AddressWidth); return; }
                BeginStage2(w, Stage2Purpose.Final, w.Iova);
                return;
            case Pgtt.FirstStage:
            case Pgtt.Nested:
            {
                if (w.Iova > MaxInput(ctx.FirstStageLevels)) { Fault(w, FaultReason.AddressWidth); return; }
                var (level, table) = _caches.Lookup(TableStage.First, w.Did, w.Pasid, w.Iova, ctx.FirstStageLevels, ctx.FirstStageTable);
                w.S1Level = level;
                w.S1TableGpa = table;
                if (ctx.Pgtt == Pgtt.FirstStage)
                {
                    w.S1TableHpa = table;
                    IssueStage1Read(w, _walkCacheLookupCycles);
                }
                else ResolveStage1Table(w, _walkCacheLookupCycles);
                return;
            }
            default:
                // Pass-through never reaches the walker; anything else is a malformed PASID entry.
                Fault(w, FaultReason.PasidNotValid);
                return;
        }
    }

    private static ulong MaxInput(int levels) => (1UL << PageTableFormat.AddressWidth(levels)) - 1;

    /// <summary>Nested: find the host-physical address of the current stage-1 table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void ResolveStage1Table(PageWalk w, int extraCycles)
    {
        if (_caches.LookupNested(w.Did, w.S1TableGpa, out var hit))
        {
            w.S1TableHpa = (hit.HpaPage << 12) | (w.S1TableGpa & 0xFFF);
            IssueStage1Read(w, extraCycles);
        }
        else BeginStage2(w, Stage2Purpose.Stage1Table, w.S1TableGpa, extraCycles);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void BeginStage2(PageWalk w, Stage2Purpose purpose, ulong input, int extraCycles = 0)
    {
        if (input > MaxInput(w.Context.SecondStageLevels)) { Fault(w, FaultReason.AddressWidth); return; }
        w.Purpose = purpose;
        w.S2Input = input;
        w.S2Rights = Access.ReadWrite;
        var (level, table) = _caches.Lookup(TableStage.Second, w.Did, 0, input, w.Context.SecondStageLevels, w.Context.SecondStageTable);
        w.S2Level = level;
        w.S2Table = table;
        IssueStage2Read(w, extraCycles + _walkCacheLookupCycles);
    }

    private void IssueStage1Read(PageWalk w, int extraCycles = 0)
        => IssueRead(w, w.S1TableHpa + 8UL * (ulong)PageTableFormat.IndexAt(w.Iova, w.S1Level), KindStage1Read, extraCycles);

    private void IssueStage2Read(PageWalk w, int extraCycles = 0)
        => IssueRead(w, w.S2Table + 8UL * (ulong)PageTableFormat.IndexAt(w.S2Input, w.S2Level), KindStage2Read, extraCycles);

    private void IssueRead(PageWalk w, ulong entryAddress, int kind, int extraCycles) => _slots.IssueRead(w, entryAddress, kind, extraCycles);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnEvent(int kind, long arg, object? payload)
    {
        var w = (PageWalk)payload!;
        if (kind == WalkEventKinds.Issue) _slots.IssuePending(w);
        else if (kind == KindStage1Read) OnStage1Entry(w);
        else OnStage2Entry(w);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void OnStage1Entry(PageWalk w)
    {
        w.Stage1Reads++;
        _slots.Stage1Reads++;
        ulong e = w.PendingValue;
        if (!PageTableFormat.IsPresent(TableStage.First, e)) { Fault(w, FaultReason.FirstStageNotPresent); return; }
        if (PageTableFormat.IsLeaf(TableStage.First, e, w.S1Level))
        {
            w.S1Rights &= PageTableFormat.Permissions(TableStage.First, e);
            w.S1Size = PageSizes.FromLeafLevel(w.S1Level);
            w.HasS1Leaf = true;
            ulong mask = w.S1Size.Bytes() - 1;
            ulong outAddr = (e & PageTableFormat.AddressMask & ~mask) | (w.Iova & mask);
            if (w.Context.Pgtt == Pgtt.FirstStage)
            {
                w.FinalHpa = outAddr;
                Complete(w);
            }
            else BeginStage2(w, Stage2Purpose.Final, outAddr);
            return;
        }
        w.S1Rights &= PageTableFormat.Permissions(TableStage.First, e);
        ulong next = e & PageTableFormat.AddressMask;
        _caches.Fill(TableStage.First, w.Did, w.Pasid, w.Iova, w.S1Level, next);
        w.S1Level--;
        w.S1TableGpa = next;
        if (w.Context.Pgtt == Pgtt.FirstStage)
        {
            w.S1TableHpa = next;
            IssueStage1Read(w);
        }
        else ResolveStage1Table(w, 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void OnStage2Entry(PageWalk w)
    {
        w.Stage2Reads++;
        _slots.Stage2Reads++;
        ulong e = w.PendingValue;
        if (!PageTableFormat.IsPresent(TableStage.Second, e)) { Fault(w, FaultReason.SecondStageNotPresent); return; }
        w.S2Rights &= PageTableFormat.Permissions(TableStage.Second, e);
        if (PageTableFormat.IsLeaf(TableStage.Second, e, w.S2Level))
        {
            var size = PageSizes.FromLeafLevel(w.S2Level);
            ulong mask = size.Bytes() - 1;
            ulong hpa = (e & PageTableFormat.AddressMask & ~mask) | (w.S2Input & mask);
            if (w.Purpose == Stage2Purpose.Stage1Table)
            {
                _caches.FillNested(w.Did, w.S2Input, hpa, w.S2Rights);
                w.S1TableHpa = hpa & ~0xFFFUL;
                IssueStage1Read(w);
                return;
            }
            w.S2Size = size;
            w.HasS2Leaf = true;
            w.S2LeafEntryAddress = w.PendingAddress;
            w.FinalHpa = hpa;
            Complete(w);
            return;
        }
        ulong next = e & PageTableFormat.AddressMask;
        _caches.Fill(TableStage.Second, w.Did, 0, w.S2Input, w.S2Level, next);
        w.S2Level--;
        w.S2Table = next;
        IssueStage2Read(w);
    }
}
