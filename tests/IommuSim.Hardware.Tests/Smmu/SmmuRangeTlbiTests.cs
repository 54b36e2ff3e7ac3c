using CsCheck;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Hardware.Tests.Smmu;

/// <summary>
/// Range TLBIs as the SMMUv3 spec defines them (§4.4, CMD_TLBI_NH_VA / CMD_TLBI_S2_IPA with SMMU_IDR3.RIL): TG
/// names the granule (1 4 KiB, 2 16 KiB, 3 64 KiB), the range is (NUM + 1) × 2^SCALE granules from the address,
/// TTL (1–3) keeps the leaves of other levels; TG = 0 names one address, every leaf that maps it. The commands go
/// through the command queue in memory (Linux's CMDQ_TLBI_* field positions) and the consumer.
/// </summary>
public class SmmuRangeTlbiTests
{
    private readonly record struct Leaf(ushort Vmid, ushort Asid, bool Stage1, ulong Address, int Shift);

    // Leaf sizes of the three granules: 4 KiB pages, 2 MiB and 1 GiB blocks; 16 KiB pages, 32 MiB blocks;
    // 64 KiB pages, 512 MiB blocks.
    private static readonly int[] Shifts = [12, 21, 30, 14, 25, 16, 29];

    /// <summary>Disjoint regions per leaf size (1 TiB apart), so a lookup of a leaf's address finds that leaf only.</summary>
    private static ulong RegionBase(int shift) => (ulong)(Array.IndexOf(Shifts, shift) + 1) << 40;

    private static readonly Gen<Leaf> GenLeaf =
        Gen.Select(Gen.Int[0, Shifts.Length - 1], Gen.UShort[1, 2], Gen.UShort[1, 2], Gen.Bool, Gen.Int[0, 127])
           .Select((s, vmid, asid, stage1, index) => new Leaf(vmid, stage1 ? asid : (ushort)0, stage1,
               RegionBase(Shifts[s]) + ((ulong)index << Shifts[s]), Shifts[s]));

    /// <summary>A range TLBI: opcode NH_VA or S2_IPA, tag, TG (4, 16 or 64 KiB), SCALE, NUM, TTL, start inside one
    /// region (at a sixteenth of its leaf size times a page number, so ranges start inside and between leaves).</summary>
    private static readonly Gen<SmmuCommand> GenRange =
        Gen.Select(Gen.Bool, Gen.UShort[1, 2], Gen.UShort[1, 2], Gen.Int[0, Shifts.Length - 1], Gen.Int[0, 200],
                Gen.Select(Gen.Byte[1, 3], Gen.Byte[0, 16], Gen.Byte[0, 31], Gen.Byte[0, 3]))
           .Select((s1, vmid, asid, region, page, f) => new SmmuCommand
           {
               Opcode = s1 ? SmmuOpcode.TlbiNhVa : SmmuOpcode.TlbiS2Ipa, Vmid = vmid, Asid = s1 ? asid : (ushort)0, Leaf = true,
               Address = RegionBase(Shifts[region]) + (((ulong)page << Shifts[region]) >> 4 & ~0xFFFUL),
               Tg = f.Item1, Scale = f.Item2, Num = f.Item3, Ttl = f.Item4,
           });

    /// <summary>The reference: what the spec says a range TLBI removes.</summary>
    private static bool Covered(Leaf e, SmmuCommand c)
    {
        int tg = c.Tg switch { 1 => 12, 2 => 14, _ => 16 };                // TG: 4, 16, 64 KiB
        ulong first = c.Address, last = c.Address + (((ulong)c.Num + 1) << (c.Scale + tg)) - 1;
        ulong start = e.Address, end = e.Address + (1UL << e.Shift) - 1;
        bool overlaps = start <= last && end >= first;
        int ttlShift = c.Ttl == 0 ? 0 : tg + (3 - c.Ttl) * (tg - 3);     // the leaf size of level TTL in that granule
        bool level = ttlShift == 0 || ttlShift == e.Shift;
        return e.Vmid == c.Vmid && overlaps && level
            && (c.Opcode == SmmuOpcode.TlbiNhVa ? e.Stage1 && e.Asid == c.Asid : !e.Stage1);
    }

    [Fact]
    public void A_range_tlbi_invalidates_exactly_the_covered_entries()
    {
        Gen.Select(GenLeaf.Array[1, 60], GenRange).Sample((leaves, cmd) =>
        {
            var rig = new SmmuRig(o => { o.Tlb.Entries = 1024; o.Tlb.Ways = 1024; }); // one set: nothing is evicted
            var distinct = leaves.Distinct().ToArray();
            foreach (var e in distinct)
                rig.Smmu.Tlb.Insert(e.Vmid, e.Asid, e.Stage1, e.Address, e.Shift, 0x1_0000_0000, Access.ReadWrite, false);
            rig.Commands(cmd);
            foreach (var e in distinct)
                Assert.Equal(!Covered(e, cmd), rig.Smmu.Tlb.Contains(e.Vmid, e.Asid, e.Stage1, e.Address));
        }, iter: 500);
    }

    [Theory]
    // TG = 0 (no RIL): one address; every leaf mapping it goes, whatever its size, and nothing else.
    [InlineData(12, 0x4000_3000UL, 0x4000_3000UL, true)]
    [InlineData(12, 0x4000_3000UL, 0x4000_4000UL, false)]
    [InlineData(21, 0x80_0020_0000UL, 0x80_0030_0000UL, true)] // an address inside a 2 MiB block
    [InlineData(21, 0x80_0020_0000UL, 0x80_0040_0000UL, false)]
    public void A_tlbi_without_range_fields_names_one_address(int shift, ulong leaf, ulong address, bool gone)
    {
        var rig = new SmmuRig();
        rig.Smmu.Tlb.Insert(1, 2, true, leaf, shift, 0x1_0000_0000, Access.ReadWrite, false);
        rig.Commands(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Vmid = 1, Asid = 2, Address = address, Leaf = true });
        Assert.Equal(!gone, rig.Smmu.Tlb.Contains(1, 2, true, leaf));
    }

    [Fact]
    public void Range_fields_survive_the_queue_encoding()
    {
        // CMDQ_TLBI_0_NUM [16:12], CMDQ_TLBI_0_SCALE [24:20], CMDQ_TLBI_1_TTL [9:8], CMDQ_TLBI_1_TG [11:10] (arm-smmu-v3.h).
        var c = new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Vmid = 9, Asid = 0xBEEF, Address = 0x7F_1234_5000, Num = 30, Scale = 17, Tg = 3, Ttl = 2, Leaf = true };
        c.Encode(out ulong d0, out ulong d1);
        Assert.Equal(30UL << 12 | 17UL << 20, d0 & 0x1FF_F000);
        Assert.Equal(2UL << 8 | 3UL << 10 | 1, d1 & 0xFFF);
        Assert.Equal(c, SmmuCommand.Decode(d0, d1));
        Assert.Equal(31UL << (17 + 16), c.RangeBytes);
        Assert.Equal(16 + 13, c.TtlLeafShift); // 64 KiB granule, level 2: 512 MiB blocks
    }
}
