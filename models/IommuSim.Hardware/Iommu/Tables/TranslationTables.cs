using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Iommu.Tables;

/// <summary>
/// The scalable-mode root table, context tables, PASID directories and PASID tables, written as
/// real entries into simulated memory. The software side (driver) edits them through this class;
/// the hardware reads the same bytes through <see cref="Locate*"/> helpers and its caches.
/// Root entry (128 bit): lower/upper scalable context-table pointer (devfn 0-127 / 128-255) with
/// a present bit each. Scalable context table: 128 entries of 256 bits. PASID directory: 2^14
/// 8-byte entries (PDTS = 7, 20-bit PASIDs), each pointing to a 64-entry PASID table.
/// </summary>
public sealed class TranslationTables
{
    public const int PasidDirectorySizeCode = 7;                 // 2^(7+7) = 16384 directory entries
    public const int PasidDirectoryEntries = 1 << (PasidDirectorySizeCode + 7);
    public const int PasidsPerTable = 64;
    public const uint MaxPasid = (1u << 20) - 1;

    private readonly PhysicalMemory _mem;
    private readonly FrameAllocator _frames;

    public TranslationTables(PhysicalMemory memory, FrameAllocator frames)
    {
        _mem = memory;
        _frames = frames;
        RootTableAddress = frames.AllocateFrame();
    }

    /// <summary>RTADDR: the root table's physical address.</summary>
    public ulong RootTableAddress { get; }

    // ---- software side -------------------------------------------------------------------

    /// <summary>Makes the device's context entry present (allocating its context table half and PASID
    /// directory on first use) with the given RID_PASID and capabilities.</summary>
    public void SetContext(RequesterId rid, uint ridPasid, bool deviceTlbEnable = false, bool pageRequestEnable = false)
    {
        ulong ctxAddr = EnsureContextSlot(rid);
        var existing = ContextEntry.Decode(_mem.ReadU64(ctxAddr), _mem.ReadU64(ctxAddr + 8));
        ulong dir = existing.Present ? existing.PasidDirectory
            : _frames.AllocateContiguous(PasidDirectoryEntries * 8UL, PhysicalMemory.FrameSize);
        var entry = new ContextEntry(true, dir, PasidDirectorySizeCode, ridPasid, deviceTlbEnable, true, pageRequestEnable);
        var (q0, q1) = entry.Encode();
        _mem.WriteU64(ctxAddr + 8, q1);
        _mem.WriteU64(ctxAddr, q0);
    }

    /// <summary>Clears the present bit of the device's context entry (DMA from it then faults).</summary>
    public void ClearContext(RequesterId rid)
    {
        if (ContextEntryAddress(rid) is ulong a) _mem.WriteU64(a, _mem.ReadU64(a) & ~1UL);
    }

    public ContextEntry ReadContext(RequesterId rid)
        => ContextEntryAddress(rid) is ulong a ? ContextEntry.Decode(_mem.ReadU64(a), _mem.ReadU64(a + 8)) : default;

    public void SetPasidEntry(RequesterId rid, uint pasid, PasidTableEntry entry)
    {
        if (pasid > MaxPasid) throw new ArgumentOutOfRangeException(nameof(pasid), pasid, "PASIDs are 20 bits");
        var ctx = ReadContext(rid);
        if (!ctx.Present) throw new InvalidOperationException($"{rid}: context entry not present");
        ulong dirEntryAddr = ctx.PasidDirectory + 8UL * (pasid >> 6);
        ulong de = _mem.ReadU64(dirEntryAddr);
        ulong table;
        if ((de & 1) == 0)
        {
            table = _frames.AllocateFrame();
            _mem.WriteU64(dirEntryAddr, table | 1);
        }
        else table = de & PageTableFormat.AddressMask;
        ulong pe = table + PasidTableEntry.Bytes * (ulong)(pasid & 63);
        var (q0, q1, q2) = entry.Encode();
        // Present bit (in Q0) last, as a driver does.
        _mem.WriteU64(pe + 8, q1);
        _mem.WriteU64(pe + 16, q2);
        _mem.WriteU64(pe, q0);
    }

    public void ClearPasidEntry(RequesterId rid, uint pasid)
    {
        if (PasidEntryAddress(rid, pasid) is ulong pe)
            for (ulong i = 0; i < PasidTableEntry.Bytes; i += 8) _mem.WriteU64(pe + i, 0);
    }

    public PasidTableEntry ReadPasidEntry(RequesterId rid, uint pasid)
        => PasidEntryAddress(rid, pasid) is ulong pe
            ? PasidTableEntry.Decode(_mem.ReadU64(pe), _mem.ReadU64(pe + 8), _mem.ReadU64(pe + 16))
            : default;

    // ---- what hardware reads -------------------------------------------------------------

    public static ulong RootEntryAddress(ulong rtaddr, RequesterId rid) => rtaddr + 16UL * (ulong)rid.Bus;

    /// <summary>Address of the device's context entry, or null when its root-entry half is not present.</summary>
    public ulong? ContextEntryAddress(RequesterId rid) => LocateContextEntry(_mem, RootTableAddress, rid);

    public static ulong? LocateContextEntry(PhysicalMemory mem, ulong rtaddr, RequesterId rid)
    {
        ulong re = mem.ReadU64(RootEntryAddress(rtaddr, rid) + (rid.DevFn >= 128 ? 8UL : 0UL));
        if ((re & 1) == 0) return null;
        return (re & PageTableFormat.AddressMask) + ContextEntry.Bytes * (ulong)(rid.DevFn & 127);
    }

    /// <summary>Address of a PASID-table entry, or null when the directory entry is not present.</summary>
    public ulong? PasidEntryAddress(RequesterId rid, uint pasid)
    {
        var ctx = ReadContext(rid);
        return ctx.Present ? LocatePasidEntry(_mem, ctx, pasid) : null;
    }

    public static ulong? LocatePasidEntry(PhysicalMemory mem, ContextEntry ctx, uint pasid)
    {
        if ((pasid >> 6) >= (uint)ctx.PasidDirectoryEntries) return null;
        ulong de = mem.ReadU64(ctx.PasidDirectory + 8UL * (pasid >> 6));
        if ((de & 1) == 0) return null;
        return (de & PageTableFormat.AddressMask) + PasidTableEntry.Bytes * (ulong)(pasid & 63);
    }

    private ulong EnsureContextSlot(RequesterId rid)
    {
        ulong reAddr = RootEntryAddress(RootTableAddress, rid) + (rid.DevFn >= 128 ? 8UL : 0UL);
        ulong re = _mem.ReadU64(reAddr);
        if ((re & 1) == 0)
        {
            ulong ct = _frames.AllocateFrame();
            re = ct | 1;
            _mem.WriteU64(reAddr, re);
        }
        return (re & PageTableFormat.AddressMask) + ContextEntry.Bytes * (ulong)(rid.DevFn & 127);
    }
}
