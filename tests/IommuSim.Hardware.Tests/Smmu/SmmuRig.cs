using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;

namespace IommuSim.Hardware.Tests.Smmu;

/// <summary>
/// An SMMU with a stream table, programmed directly as the arm-smmu-v3 driver would: STEs, CDs and
/// VMSAv8-64 tables in simulated memory. Nested streams get a guest whose IPA space [0, ram) is
/// mapped by stage 2 to PA [GuestRamPa, +ram); the guest's stage-1 and CD tables live in that RAM.
/// </summary>
internal sealed class SmmuRig : ISmmuClient
{
    public const ulong GuestRamPa = 0x1_0000_0000;
    public const ushort Vmid = 7;
    public const ushort Asid = 3;

    public Scheduler Scheduler { get; } = new();
    public PhysicalMemory Memory { get; } = new();
    public FrameAllocator Frames { get; }
    public MemoryTimingModel Timing { get; }
    public SmmuUnit Smmu { get; }
    public VmsaPageTable? Stage1 { get; private set; }
    public VmsaPageTable? Stage2 { get; private set; }
    public List<SmmuTransaction> Completed { get; } = [];

    public SmmuRig(Action<SmmuOptions>? tweak = null, bool walkCaches = false, int log2StreamIds = 8, int? split = null)
    {
        var o = new SmmuOptions();
        o.WalkCache.Enabled = walkCaches;
        tweak?.Invoke(o);
        Frames = new FrameAllocator(Memory, 0x1000_0000, 0xF000_0000);
        Timing = new MemoryTimingModel(new MemoryOptions(), new SimRandom(1));
        Smmu = new SmmuUnit(o, Scheduler, Memory, Frames, Timing) { Client = this };
        Smmu.StreamTable = new StreamTable(Smmu.Memory, log2StreamIds, split);
    }

    public void OnTranslated(SmmuTransaction t) => Completed.Add(t);
    public void OnSlotFree() { }

    /// <summary>Stage 1 only: CD.TTB0 over a host table mapping iova → pa.</summary>
    public void SetupStage1(uint sid, Granule g, int inputBits, ulong iova, ulong pa, ulong bytes, int maxLeafShift = 12,
        Access access = Access.ReadWrite, bool hardwareDirty = false, bool stall = false, int cdMax = 0)
    {
        Stage1 = new VmsaPageTable(Smmu.Memory, SmmuStage.Stage1, g, inputBits, dirtyBitModifier: hardwareDirty);
        Stage1.Map(iova, pa, bytes, access, maxLeafShift);
        var cds = new ContextDescriptorTable(Smmu.Memory, cdMax);
        cds.Install(0, Cd(g, inputBits, Stage1.Root, hardwareDirty, stall));
        Smmu.StreamTable!.Install(sid, new StreamTableEntry
        {
            Valid = true, Config = SteConfig.Stage1, S1ContextPtr = cds.Base, S1CdMax = (byte)cdMax, S1Dss = 2,
        });
    }

    /// <summary>Stage 2 only: STE.S2TTB over a host table mapping ipa → pa.</summary>
    public void SetupStage2(uint sid, Granule g, int inputBits, int? startLevel, ulong ipa, ulong pa, ulong bytes, int maxLeafShift = 12,
        Access access = Access.ReadWrite)
    {
        Stage2 = new VmsaPageTable(Smmu.Memory, SmmuStage.Stage2, g, inputBits, startLevel);
        Stage2.Map(ipa, pa, bytes, access, maxLeafShift);
        Smmu.StreamTable!.Install(sid, S2Ste(g, inputBits, Stage2, SteConfig.Stage2));
    }

    /// <summary>Nested: a guest stage-1 table (in guest RAM) mapping iova → gpaTarget, over stage 2 mapping the
    /// whole guest RAM.</summary>
    public void SetupNested(uint sid, Granule g1, int in1, Granule g2, int in2, int? s2Start, ulong iova, ulong gpaTarget, ulong bytes,
        ulong ramBytes = 1UL << 30, int s2MaxLeafShift = 12, int s1MaxLeafShift = 12)
    {
        Stage2 = new VmsaPageTable(Smmu.Memory, SmmuStage.Stage2, g2, in2, s2Start);
        Stage2.Map(0, GuestRamPa, ramBytes, Access.ReadWrite, s2MaxLeafShift);
        var guest = new GuestMemory(Memory, ramBytes);
        Stage1 = new VmsaPageTable(guest, SmmuStage.Stage1, g1, in1);
        Stage1.Map(iova, gpaTarget, bytes, Access.ReadWrite, s1MaxLeafShift);
        var cds = new ContextDescriptorTable(guest, 0);
        cds.Install(0, Cd(g1, in1, Stage1.Root, false, false));
        Smmu.StreamTable!.Install(sid, S2Ste(g2, in2, Stage2, SteConfig.Nested) with { S1ContextPtr = cds.Base });
    }

    private static ContextDescriptor Cd(Granule g, int inputBits, ulong ttb, bool hd, bool stall) => new()
    {
        Valid = true, T0Sz = (byte)(64 - inputBits), Tg0 = g, Ips = 5, Aa64 = true, HardwareAccess = true, HardwareDirty = hd,
        Record = true, Stall = stall, Asid = Asid, Ttb0 = ttb,
    };

    private static StreamTableEntry S2Ste(Granule g, int inputBits, VmsaPageTable t, SteConfig config) => new()
    {
        Valid = true, Config = config, S1Dss = 2, S2Vmid = Vmid, S2T0Sz = (byte)(64 - inputBits),
        S2Sl0 = StreamTableEntry.EncodeSl0(g, t.StartLevel), S2Granule = g, S2Ps = 5, S2Aa64 = true, S2HardwareAccess = true,
        S2Record = true, S2Ttb = t.Root,
    };

    /// <summary>Translates one transaction and runs the simulation until it is done.</summary>
    public SmmuTransaction Translate(uint sid, ulong address, Access access = Access.Read, uint? ssid = null)
    {
        var t = new SmmuTransaction { Sid = sid, Address = address, Access = access, Ssid = ssid ?? 0, HasSsid = ssid.HasValue };
        Assert.True(Smmu.TryAccept(t));
        Scheduler.Run();
        return t;
    }

    /// <summary>Submits commands ending in CMD_SYNC and runs until the sync completed.</summary>
    public void Commands(params SmmuCommand[] commands)
    {
        bool synced = false;
        var all = commands.Append(new SmmuCommand { Opcode = SmmuOpcode.CmdSync }).ToArray();
        Assert.True(Smmu.CommandQueue.Submit(all, () => synced = true));
        Scheduler.Run();
        Assert.True(synced);
    }

    /// <summary>Guest RAM seen from the guest: IPA x is PA GuestRamPa + x; tables from a bump allocator at the top.</summary>
    private sealed class GuestMemory(PhysicalMemory memory, ulong ramBytes) : ISmmuTableMemory
    {
        private ulong _next = ramBytes / 2;
        public ulong ReadU64(ulong ipa) => memory.ReadU64(GuestRamPa + ipa);
        public void WriteU64(ulong ipa, ulong value) => memory.WriteU64(GuestRamPa + ipa, value);
        public ulong AllocateTable(ulong bytes)
        {
            ulong a = (_next + bytes - 1) & ~(bytes - 1);
            _next = a + Math.Max(bytes, 64);
            return a;
        }
        public void FreeTable(ulong address, ulong bytes) { }
    }
}
