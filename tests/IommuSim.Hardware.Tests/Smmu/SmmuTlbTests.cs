using IommuSim.Engine.Rng;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Caches;

namespace IommuSim.Hardware.Tests.Smmu;

public class SmmuTlbTests
{
    /// <summary>A plain reference: per set, a list of tags ordered most- to least-recently used.</summary>
    private sealed class ReferenceLru(int sets, int ways)
    {
        private readonly List<(ushort Asid, ulong Page)>[] _sets = Enumerable.Range(0, sets).Select(_ => new List<(ushort, ulong)>()).ToArray();
        public long Misses;

        public void Access(ushort asid, ulong page)
        {
            var s = _sets[(int)(page % (ulong)sets)];
            int i = s.IndexOf((asid, page));
            if (i >= 0) { s.RemoveAt(i); s.Insert(0, (asid, page)); return; }
            Misses++;
            if (s.Count == ways) s.RemoveAt(s.Count - 1);
            s.Insert(0, (asid, page));
        }

        public void InvalidateAsid(ushort asid)
        {
            foreach (var s in _sets) s.RemoveAll(e => e.Asid == asid);
        }
    }

    [Theory]
    [InlineData(2048, 4, 3000, 1)]
    [InlineData(64, 64, 100, 2)]
    [InlineData(256, 1, 600, 3)]
    [InlineData(512, 8, 900, 4)]
    public void Lru_misses_match_a_reference_model_with_asid_tags_and_asid_invalidation(int entries, int ways, int pages, int seed)
    {
        var tlb = new SmmuTlb(new SmmuTlbOptions { Entries = entries, Ways = ways });
        var reference = new ReferenceLru(entries / ways, ways);
        var rng = new SimRandom((ulong)seed);
        for (int i = 0; i < 30_000; i++)
        {
            ushort asid = (ushort)(1 + rng.NextBelow(3));
            if (rng.NextDouble() < 0.001)
            {
                tlb.InvalidateAsid(9, asid);
                reference.InvalidateAsid(asid);
                continue;
            }
            ulong page = rng.NextDouble() < 0.5 ? rng.NextBelow((ulong)pages) : rng.NextBelow((ulong)Math.Max(1, pages / 8));
            reference.Access(asid, page);
            if (!tlb.Lookup(9, asid, true, page << 12, out _)) tlb.Insert(9, asid, true, page << 12, 12, 0x1_0000_0000 + (page << 12), Access.ReadWrite, false);
        }
        Assert.Equal(reference.Misses, tlb.Misses);
    }

    [Fact]
    public void Entries_of_every_size_are_found_and_translate_inside_their_leaf()
    {
        var tlb = new SmmuTlb(new SmmuTlbOptions());
        int[] shifts = [12, 14, 16, 21, 25, 29, 30];
        for (int i = 0; i < shifts.Length; i++)
            tlb.Insert(1, 1, true, (ulong)(i + 1) << 32, shifts[i], (ulong)(i + 1) << 40, Access.Read, false);
        for (int i = 0; i < shifts.Length; i++)
        {
            ulong inside = ((ulong)(i + 1) << 32) + (1UL << shifts[i]) - 8;
            Assert.True(tlb.Lookup(1, 1, true, inside, out var hit));
            Assert.Equal(((ulong)(i + 1) << 40) + (1UL << shifts[i]) - 8, hit.OutputAddress);
            Assert.False(tlb.Contains(1, 1, true, ((ulong)(i + 1) << 32) + (1UL << shifts[i])));
        }
    }

    [Fact]
    public void Invalidation_commands_remove_exactly_what_they_name()
    {
        var tlb = new SmmuTlb(new SmmuTlbOptions());
        // VMID 1: stage-1 entries of ASID 1 and 2, a stage-2-only entry; VMID 2: one stage-1 entry.
        tlb.Insert(1, 1, true, 0x1000, 12, 0xA000, Access.Read, false);
        tlb.Insert(1, 1, true, 0x2000, 12, 0xB000, Access.Read, false);
        tlb.Insert(1, 2, true, 0x1000, 12, 0xC000, Access.Read, false);
        tlb.Insert(1, 0, false, 0x1000, 12, 0xD000, Access.Read, false);
        tlb.Insert(2, 1, true, 0x1000, 12, 0xE000, Access.Read, false);

        Assert.Equal(1, tlb.InvalidateVa(1, 1, 0x2000, 0x2FFF));      // TLBI_NH_VA
        Assert.Equal(1, tlb.InvalidateIpa(1, 0x1000, 0x1FFF));        // TLBI_S2_IPA: only the stage-2 entry
        Assert.True(tlb.Contains(1, 1, true, 0x1000));
        Assert.Equal(1, tlb.InvalidateAsid(1, 2));                    // TLBI_NH_ASID
        Assert.Equal(1, tlb.InvalidateStage1(1));                     // TLBI_NH_ALL of VMID 1
        Assert.True(tlb.Contains(2, 1, true, 0x1000));                // another VMID untouched
        Assert.Equal(1, tlb.InvalidateVmid(2));                       // TLBI_S12_VMALL
        Assert.Equal(0, tlb.Occupancy);
    }

    [Fact]
    public void Stage1_and_stage2_entries_of_one_vmid_never_answer_for_each_other()
    {
        var tlb = new SmmuTlb(new SmmuTlbOptions());
        tlb.Insert(4, 0, false, 0x5000, 12, 0x9000, Access.ReadWrite, false);
        Assert.False(tlb.Contains(4, 0, true, 0x5000));
        Assert.True(tlb.Contains(4, 0, false, 0x5000));
        Assert.True(tlb.Contains(4, 77, false, 0x5000)); // stage-2 entries carry no ASID
    }
}
