using System.Globalization;
using IommuSim.Simulation.Sweeps;

namespace IommuSim.Simulation.Tests;

/// <summary>Sweeps from code: plan, run (sharded and whole), merge — sweep.csv without the CLI's plots.</summary>
public class SweepTests
{
    private const string Tiny = """
    { "name": "tiny", "simulation": { "seed": 1, "warmupRequests": 100, "maxRequests": 1000 },
      "translation": { "design": "single-stage" },
      "vms": [ { "name": "vm0", "memoryMiB": 256 } ],
      "devices": [ { "name": "dev0", "bdf": "0000:03:00.0", "maxOutstanding": 32,
          "dmaRegions": [ { "iova": "0x100000000", "bytes": "16MiB" } ] } ],
      "workloads": [ { "device": "dev0", "type": "random", "bytes": 64, "readFraction": 1.0, "workingSetBytes": "1MiB" } ] }
    """;

    private const string Sweep = """
    { "name": "tiny-sweep", "base": "tiny.json",
      "vary": { "iommu:iotlb:sets": [4, 64] }, "seeds": [1, 2],
      "plots": [ { "x": "iommu:iotlb:sets", "y": "iotlb.missRate" } ] }
    """;

    private static string Prepare(TempDir t)
    {
        File.WriteAllText(t.Sub("tiny.json"), Tiny);
        File.WriteAllText(t.Sub("sweep.json"), Sweep);
        return t.Sub("sweep.json");
    }

    [Fact]
    public void A_sweep_runs_from_code_and_writes_sweep_csv_with_one_row_per_point()
    {
        using var t = new TempDir();
        var plan = Simulator.PlanSweep(Prepare(t));
        Assert.Equal(4, plan.Points.Count);
        var r = Simulator.RunSweep(plan, t.Sub("out"), jobs: 2);
        Assert.True(r.Complete);
        Assert.Equal(4, r.Ran);
        var table = SweepTable.ParseCsv(File.ReadAllText(Path.Combine(t.Sub("out"), SweepRunner.SweepCsv)));
        Assert.Equal(4, table.Rows.Count);
        Assert.Empty(Directory.GetFiles(t.Sub("out"), "*.png"));   // plots are the CLI's
        // More IOTLB sets, fewer misses, for each seed.
        double Miss(int i) => double.Parse(table.Cell(table.Rows[i], "iotlb.missRate"), CultureInfo.InvariantCulture);
        var bySets = table.Rows.Select((row, i) => (sets: table.Cell(row, "iommu:iotlb:sets"), miss: Miss(i))).GroupBy(x => x.sets).ToDictionary(g => g.Key, g => g.Average(x => x.miss));
        Assert.True(bySets["64"] < bySets["4"], $"miss rate 64 sets {bySets["64"]}, 4 sets {bySets["4"]}");
    }

    [Fact]
    public void Shards_merged_equal_the_whole_sweep()
    {
        using var t = new TempDir();
        var plan = Simulator.PlanSweep(Prepare(t));
        Simulator.RunSweep(plan, t.Sub("whole"), jobs: 2);
        var s0 = Simulator.RunSweep(plan, t.Sub("s0"), shard: ShardSpec.Parse("0/2"));
        Simulator.RunSweep(plan, t.Sub("s1"), shard: ShardSpec.Parse("1/2"));
        Assert.False(s0.Complete);
        var m = Simulator.MergeSweep([t.Sub("s0"), t.Sub("s1")], t.Sub("merged"));
        Assert.Equal(4, m.Points);
        string Csv(string d) => string.Join("\n", File.ReadAllLines(Path.Combine(d, SweepRunner.SweepCsv)));
        var whole = SweepTable.ParseCsv(Csv(t.Sub("whole")));
        var merged = SweepTable.ParseCsv(Csv(t.Sub("merged")));
        Assert.Equal(whole.Rows.Count, merged.Rows.Count);
        for (int i = 0; i < whole.Rows.Count; i++)
            foreach (var k in new[] { "iotlb.missRate", "requests.completed", "latencyNs.dma.p99" })
                Assert.Equal(whole.Cell(whole.Rows[i], k), merged.Cell(merged.Rows[i], k));
    }
}
