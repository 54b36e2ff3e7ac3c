using IommuSim.Engine.Rng;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;

namespace IommuSim.Hardware.Tests.Smmu;

/// <summary>STE, CD, command and event encodings round-trip; stream and CD tables find what software installed.</summary>
public class SmmuStructureTests
{
    private static HostSmmuTableMemory NewMemory()
    {
        var mem = new PhysicalMemory();
        return new HostSmmuTableMemory(mem, new FrameAllocator(mem, 0x10_0000, 0x4000_0000));
    }

    [Fact]
    public void Random_stes_and_cds_round_trip_through_their_64_byte_encoding()
    {
        var rng = new SimRandom(11);
        Span<ulong> d = stackalloc ulong[8];
        Granule[] granules = [Granule.Size4K, Granule.Size16K, Granule.Size64K];
        SteConfig[] configs = [SteConfig.Abort, SteConfig.Bypass, SteConfig.Stage1, SteConfig.Stage2, SteConfig.Nested];
        for (int i = 0; i < 2000; i++)
        {
            var ste = new StreamTableEntry
            {
                Valid = rng.NextDouble() < 0.9, Config = configs[rng.NextBelow(5)], S1Fmt = (byte)rng.NextBelow(3),
                S1ContextPtr = rng.NextU64() & 0x000F_FFFF_FFFF_FFC0UL, S1CdMax = (byte)rng.NextBelow(21), S1Dss = (byte)rng.NextBelow(3),
                S1StallDisable = rng.NextDouble() < 0.5, Eats = (byte)rng.NextBelow(2), S2Vmid = (ushort)rng.NextU64(),
                S2T0Sz = (byte)(16 + rng.NextBelow(30)), S2Sl0 = (byte)rng.NextBelow(3), S2Granule = granules[rng.NextBelow(3)],
                S2Ps = 5, S2Aa64 = true, S2HardwareDirty = rng.NextDouble() < 0.5, S2HardwareAccess = rng.NextDouble() < 0.5,
                S2Stall = rng.NextDouble() < 0.5, S2Record = rng.NextDouble() < 0.5, S2Ttb = rng.NextU64() & 0x000F_FFFF_FFFF_F000UL,
            };
            ste.Encode(d);
            Assert.Equal(ste, StreamTableEntry.Decode(d));
            var cd = new ContextDescriptor
            {
                Valid = rng.NextDouble() < 0.9, T0Sz = (byte)(16 + rng.NextBelow(30)), Tg0 = granules[rng.NextBelow(3)],
                Epd0 = rng.NextDouble() < 0.1, Ips = 5, Aa64 = true, HardwareDirty = rng.NextDouble() < 0.5,
                HardwareAccess = rng.NextDouble() < 0.5, Stall = rng.NextDouble() < 0.5, Record = rng.NextDouble() < 0.5,
                Abort = rng.NextDouble() < 0.5, Asid = (ushort)rng.NextU64(), Ttb0 = rng.NextU64() & 0x000F_FFFF_FFFF_F000UL,
                Mair = rng.NextU64(),
            };
            cd.Encode(d);
            Assert.Equal(cd, ContextDescriptor.Decode(d));
        }
    }

    [Theory]
    [InlineData(SmmuOpcode.CfgiCd)]
    [InlineData(SmmuOpcode.TlbiNhVa)]
    [InlineData(SmmuOpcode.TlbiS2Ipa)]
    [InlineData(SmmuOpcode.AtcInv)]
    [InlineData(SmmuOpcode.PriResp)]
    [InlineData(SmmuOpcode.Resume)]
    [InlineData(SmmuOpcode.CmdSync)]
    public void Commands_round_trip_the_fields_their_opcode_carries(SmmuOpcode op)
    {
        var c = op switch
        {
            SmmuOpcode.CfgiCd => new SmmuCommand { Opcode = op, Sid = 0x1234, Ssid = 77, SubstreamValid = true },
            SmmuOpcode.TlbiNhVa => new SmmuCommand { Opcode = op, Vmid = 9, Asid = 0xBEEF, Address = 0x7F_1234_5000, Tg = 1, Scale = 4, Num = 0, Ttl = 3, Leaf = true },
            SmmuOpcode.TlbiS2Ipa => new SmmuCommand { Opcode = op, Vmid = 9, Address = 0x4000_0000 },
            SmmuOpcode.AtcInv => new SmmuCommand { Opcode = op, Sid = 3, Ssid = 5, SubstreamValid = true, Address = 0x9000, Pages = 4 },
            SmmuOpcode.PriResp => new SmmuCommand { Opcode = op, Sid = 3, Ssid = 5, SubstreamValid = true, Tag = 300, Action = 2 },
            SmmuOpcode.Resume => new SmmuCommand { Opcode = op, Sid = 3, Tag = 0xABCD, Action = 1 },
            _ => new SmmuCommand { Opcode = op, MsiAddress = 0x1000_0040 },
        };
        c.Encode(out ulong d0, out ulong d1);
        Assert.Equal(c, SmmuCommand.Decode(d0, d1));
    }

    [Fact]
    public void Events_round_trip()
    {
        var e = new SmmuEvent(SmmuEventType.Permission, 0x42, 9, true, 0x7000_1234, true, true, SmmuEventClass.TranslationTable, 0x3000_0008, true, 17);
        Span<ulong> d = stackalloc ulong[4];
        e.Encode(d);
        Assert.Equal(e, SmmuEvent.Decode(d));
    }

    [Theory]
    [InlineData(8, null)]
    [InlineData(16, 6)]
    [InlineData(20, 8)]
    [InlineData(24, 10)]
    public void Stream_tables_find_installed_stes_linear_and_two_level(int log2, int? split)
    {
        var table = new StreamTable(NewMemory(), log2, split);
        uint[] sids = [0, 1, 63, 64, (1u << log2) - 1, (1u << (log2 - 1)) + 5];
        foreach (uint sid in sids) table.Install(sid, new StreamTableEntry { Valid = true, Config = SteConfig.Stage2, S2Vmid = (ushort)sid });
        foreach (uint sid in sids)
        {
            var (addr, reads) = table.Locate(sid);
            Assert.NotNull(addr);
            Assert.Equal(split is null ? 1 : 2, reads);
            Assert.Equal((ushort)sid, table.Read(sid).S2Vmid);
        }
        if (split is int s)
        {
            // A StreamID whose L2 table was never created: the L1 descriptor is invalid (one read, no STE).
            uint missing = 3u << s;
            if (!sids.Any(x => x >> s == missing >> s)) Assert.Null(table.Locate(missing).SteAddress);
        }
    }

    [Theory]
    [InlineData(4, 0)]
    [InlineData(12, 1)]
    [InlineData(16, 2)]
    public void Cd_tables_find_installed_cds_linear_and_two_level(int cdMax, byte fmt)
    {
        var mem = NewMemory();
        var table = new ContextDescriptorTable(mem, cdMax, fmt);
        uint[] ssids = [0, 1, (1u << cdMax) - 1, 1u << (cdMax - 1)];
        foreach (uint ssid in ssids) table.Install(ssid, new ContextDescriptor { Valid = true, Aa64 = true, T0Sz = 16, Asid = (ushort)(ssid + 1) });
        foreach (uint ssid in ssids)
        {
            var (addr, reads) = ContextDescriptorTable.Locate(mem, table.Base, table.S1Fmt, ssid);
            Assert.Equal(table.S1Fmt == 0 ? 1 : 2, reads);
            Assert.Equal((ushort)(ssid + 1), ContextDescriptorTable.ReadCd(mem, addr!.Value).Asid);
        }
        table.Clear(1);
        Assert.False(table.Read(1).Valid);
    }

    [Theory]
    [InlineData(Granule.Size4K, 48)]
    [InlineData(Granule.Size16K, 47)]
    [InlineData(Granule.Size64K, 42)]
    public void Page_tables_map_translate_and_unmap_with_the_largest_leaves_alignment_allows(Granule g, int bits)
    {
        var t = new VmsaPageTable(NewMemory(), SmmuStage.Stage1, g, bits);
        ulong block = 1UL << g.LeafShift(2);
        t.Map(block, 2 * block, block + g.Bytes(), Access.Read); // one level-2 block, then one page
        var first = t.Translate(block + 0x10)!.Value;
        Assert.Equal(g.LeafShift(2), first.LeafShift);
        Assert.Equal(2 * block + 0x10, first.Output);
        Assert.Equal(Access.Read, first.Access);
        var page = t.Translate(2 * block + 8)!.Value;
        Assert.Equal(g.Shift(), page.LeafShift);
        Assert.Equal(block + g.Bytes(), t.Unmap(block, block + g.Bytes()));
        Assert.Null(t.Translate(block));
        Assert.Null(t.Translate(2 * block));
    }

    [Theory]
    [InlineData(Granule.Size4K, 48, 0, false, null)]
    [InlineData(Granule.Size4K, 40, 1, true, null)]   // two concatenated tables
    [InlineData(Granule.Size4K, 40, 1, false, "at most 9")]
    [InlineData(Granule.Size4K, 48, 2, true, "at most 13")] // 17 tables
    [InlineData(Granule.Size64K, 48, 0, true, "level 1")]
    [InlineData(Granule.Size16K, 48, 0, false, null)]
    public void Geometry_checks_follow_the_concatenation_rules(Granule g, int bits, int start, bool stage2, string? error)
    {
        var e = g.CheckGeometry(bits, start, stage2);
        if (error is null) Assert.Null(e);
        else Assert.Contains(error, e);
    }
}
