using IommuSim.Cli.Commands;
using IommuSim.Simulation.Sweeps;

namespace IommuSim.Cli.Tests.Sweeps;

public class SweepCliTests
{
    private static (int Rc, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = CliApp.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Fact]
    public void Dry_run_lists_the_shard_points_and_writes_nothing()
    {
        using var t = new TempSweep();
        var (rc, output, _) = Cli("sweep", t.SweepPath, "--dry-run", "--shard", "1/5", "--out", t.Sub("out"));
        Assert.Equal(CliApp.Ok, rc);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("0001  seed=2  workloads:0:workingSetBytes=64KiB  iommu:iotlb:sets=4", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("0006  seed=1  workloads:0:workingSetBytes=1MiB  iommu:iotlb:sets=16", lines[1], StringComparison.Ordinal);
        Assert.StartsWith("0011", lines[2], StringComparison.Ordinal);
        Assert.Contains("12 points (3 × 2 × 2 seeds), 3 in shard 1/5", lines[3], StringComparison.Ordinal);
        Assert.False(Directory.Exists(t.Sub("out")));
    }

    [Fact]
    public void Sweep_shards_and_merge_through_the_command_line()
    {
        using var t = new TempSweep();
        foreach (var i in new[] { 0, 1 })
        {
            var (rc, output, err) = Cli("sweep", t.SweepPath, "--shard", $"{i}/2", "--jobs", "2", "--out", t.Sub($"shard-{i}"), "--quiet", "--no-plots");
            Assert.True(rc == CliApp.Ok, err);
            Assert.Contains("6 points run", output, StringComparison.Ordinal);
            Assert.Contains("6 points still missing", output, StringComparison.Ordinal);
        }
        var m = Cli("merge", t.Sub("shard-0"), t.Sub("shard-1"), "--out", t.Sub("all"));
        Assert.True(m.Rc == CliApp.Ok, m.Err);
        Assert.Contains("merged 12 points (12 copied", m.Out, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(t.Sub("all"), SweepRunner.SweepCsv)));
        Assert.True(File.Exists(Path.Combine(t.Sub("all"), "iotlb.missRate-vs-workingSetBytes-by-sets.png")));
        Assert.Equal(12, Directory.GetDirectories(Path.Combine(t.Sub("all"), "points")).Length);
        // the shard folders are left as they were
        Assert.False(File.Exists(Path.Combine(t.Sub("shard-0"), SweepRunner.SweepCsv)));
    }

    [Fact]
    public void Merge_of_a_folder_that_is_not_a_sweep_is_bad_input()
    {
        using var t = new TempSweep();
        var (rc, _, err) = Cli("merge", t.Dir, "--out", t.Sub("m"));
        Assert.Equal(CliApp.BadInput, rc);
        Assert.Contains("not a sweep folder", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_base_config_is_bad_input()
    {
        using var t = new TempSweep(TempSweep.DefaultSweep.Replace("tiny.json", "nope.json", StringComparison.Ordinal));
        var (rc, _, err) = Cli("sweep", t.SweepPath, "--out", t.Sub("out"));
        Assert.Equal(CliApp.BadInput, rc);
        Assert.Contains("base = nope.json: file not found", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(t.Sub("out")));
    }
}
