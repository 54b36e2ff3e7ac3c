using IommuSim.Cli.Commands;
using IommuSim.Cli.Plots;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Results;
using IommuSim.Simulation.Running;
using IommuSim.Simulation.Sweeps;

namespace IommuSim.Cli.Tests.Sweeps;

public class SweepRunTests
{
    private static SweepResult RunSweep(TempSweep t, string outName, int jobs = 2, ShardSpec? shard = null, bool resume = false, bool plots = false)
        => SweepRunner.Run(SweepPlan.Prepare(t.SweepPath, useEnvironment: false),
            new SweepOptions(t.Sub(outName), jobs, shard ?? ShardSpec.All, resume) { ResultsExtra = plots ? (d, s, tb) => SweepPlots.Draw(d, s, tb) : null });

    private static string Csv(string dir) => File.ReadAllText(Path.Combine(dir, SweepRunner.SweepCsv));

    private static string WithoutWallClock(string csv) => SweepTable.ParseCsv(csv).ToCsvWithoutWallClock();

    [Fact]
    public void Sharded_and_merged_equals_unsharded_apart_from_wall_clock()
    {
        using var t = new TempSweep();
        var whole = RunSweep(t, "whole", jobs: 2);
        Assert.True(whole.Complete);
        Assert.Equal(12, whole.Ran);

        var s0 = RunSweep(t, "s0", jobs: 1, shard: new ShardSpec(0, 2));
        var s1 = RunSweep(t, "s1", jobs: 2, shard: new ShardSpec(1, 2));
        Assert.False(s0.Complete);
        Assert.Equal(6, s0.Ran);
        Assert.Equal(6, s1.Ran);
        Assert.False(File.Exists(Path.Combine(t.Sub("s0"), SweepRunner.SweepCsv)));
        Assert.False(Directory.Exists(SweepRunner.PointDir(t.Sub("s0"), 1)));

        var m = SweepMerge.Merge([t.Sub("s0"), t.Sub("s1")], t.Sub("merged"));
        Assert.Equal(12, m.Copied);

        string a = Csv(t.Sub("whole")), b = Csv(t.Sub("merged"));
        Assert.Equal(WithoutWallClock(a), WithoutWallClock(b));
        Assert.Equal(13, a.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        // The comparison must be able to fail: a different seed changes rows.
        Assert.NotEqual(WithoutWallClock(a), WithoutWallClock(a.Replace(",0.", ",1.", StringComparison.Ordinal)));
    }

    [Fact]
    public void Csv_has_point_seed_vary_then_summary_columns_in_index_order()
    {
        using var t = new TempSweep();
        RunSweep(t, "out");
        var table = SweepTable.ParseCsv(Csv(t.Sub("out")));
        Assert.Equal(["point", "seed", "workloads:0:workingSetBytes", "iommu:iotlb:sets", "name"], table.Columns.Take(5));
        Assert.Equal(1, table.Columns.Count(c => c == "seed"));
        Assert.Contains("iotlb.missRate", table.Columns);
        Assert.Contains("sim.wallSeconds", table.Columns);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), table.Rows.Select(r => r[0]));
        Assert.Equal(["1", "2", "1", "2"], table.Rows.Take(4).Select(r => table.Cell(r, "seed")));
        Assert.Equal(["4", "4", "16", "16"], table.Rows.Take(4).Select(r => table.Cell(r, "iommu:iotlb:sets")));
        Assert.Equal("4MiB", table.Cell(table.Rows[11], "workloads:0:workingSetBytes"));
        // The summary of a point is the one a plain run of that point's config writes.
        string summary = File.ReadAllText(SweepRunner.SummaryPath(t.Sub("out"), 5));
        Assert.Contains("\"seed\": 2", summary, StringComparison.Ordinal);
        // 16 sets × 4 ways over a 64 KiB window of 4 KiB pages: everything fits, more IOTLB entries never miss more.
        double Miss(int i) => double.Parse(table.Cell(table.Rows[i], "iotlb.missRate"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Miss(2) <= Miss(0));
        Assert.True(Miss(10) > Miss(2));
    }

    [Fact]
    public void Jobs_do_not_change_results()
    {
        using var t = new TempSweep();
        RunSweep(t, "j1", jobs: 1);
        RunSweep(t, "j3", jobs: 3);
        Assert.Equal(WithoutWallClock(Csv(t.Sub("j1"))), WithoutWallClock(Csv(t.Sub("j3"))));
        for (int i = 0; i < 12; i++)
        {
            var a = File.ReadAllText(SweepRunner.SummaryPath(t.Sub("j1"), i));
            var b = File.ReadAllText(SweepRunner.SummaryPath(t.Sub("j3"), i));
            Assert.Equal(StripWall(a), StripWall(b));
        }
    }

    private static string StripWall(string summaryJson)
        => string.Join('\n', summaryJson.Split('\n').Where(l => !l.Contains("\"wallSeconds\"", StringComparison.Ordinal) && !l.Contains("\"eventsPerSecond\"", StringComparison.Ordinal)));

    [Fact]
    public void Resume_skips_finished_points_and_ignores_interrupted_ones()
    {
        using var t = new TempSweep();
        RunSweep(t, "out", shard: new ShardSpec(0, 3));
        // An interrupted point: only its temporary folder exists (RunFolderWriter renames at the end).
        string tmp = Path.Combine(t.Sub("out"), "points", ".0001.tmp-1-x");
        Directory.CreateDirectory(tmp);
        File.WriteAllText(Path.Combine(tmp, "summary.json"), "{}");
        var r = RunSweep(t, "out", resume: true);
        Assert.Equal(4, r.Skipped);
        Assert.Equal(8, r.Ran);
        Assert.True(r.Complete);
        var again = RunSweep(t, "out", resume: true);
        Assert.Equal(0, again.Ran);
        Assert.Equal(12, again.Skipped);
    }

    [Fact]
    public void Resume_into_a_folder_of_another_sweep_is_refused()
    {
        using var t = new TempSweep();
        RunSweep(t, "out", shard: new ShardSpec(0, 6));
        File.WriteAllText(t.SweepPath, TempSweep.DefaultSweep.Replace("[1, 2]", "[1, 3]", StringComparison.Ordinal));
        var e = Assert.Throws<ConfigError>(() => RunSweep(t, "out", resume: true));
        Assert.Contains("different sweep", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Merge_with_missing_points_names_them()
    {
        using var t = new TempSweep();
        RunSweep(t, "s0", shard: new ShardSpec(0, 4));
        RunSweep(t, "s1", shard: new ShardSpec(1, 4));
        var e = Assert.Throws<ConfigError>(() => SweepMerge.Merge([t.Sub("s0"), t.Sub("s1")], t.Sub("m")));
        Assert.Contains("2-3, 6-7, 10-11", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(t.Sub("m"), SweepRunner.SweepCsv)));
    }

    [Fact]
    public void Merge_refuses_folders_of_different_sweeps()
    {
        using var t = new TempSweep();
        RunSweep(t, "a", shard: new ShardSpec(0, 6));
        File.WriteAllText(t.SweepPath, TempSweep.DefaultSweep.Replace("tiny-sweep", "other", StringComparison.Ordinal));
        RunSweep(t, "b", shard: new ShardSpec(1, 6));
        var e = Assert.Throws<ConfigError>(() => SweepMerge.Merge([t.Sub("a"), t.Sub("b")], t.Sub("m")));
        Assert.Contains("not shards of the same sweep", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_vary_key_is_reported_before_anything_runs()
    {
        using var t = new TempSweep(TempSweep.DefaultSweep.Replace("iommu:iotlb:sets", "iommu:iotlb:setz", StringComparison.Ordinal));
        var err = new StringWriter();
        int rc = CliApp.Run(["sweep", t.SweepPath, "--out", t.Sub("out"), "--quiet"], new StringWriter(), err);
        Assert.Equal(CliApp.BadInput, rc);
        Assert.Contains("vary:iommu:iotlb:setz", err.ToString(), StringComparison.Ordinal);
        Assert.Contains("unknown key", err.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(t.Sub("out")));
    }

    [Fact]
    public void Bad_vary_value_names_the_key_and_value()
    {
        using var t = new TempSweep(TempSweep.DefaultSweep.Replace("[4, 16]", "[4, 3]", StringComparison.Ordinal));
        var e = Assert.Throws<ConfigError>(() => SweepPlan.Prepare(t.SweepPath, useEnvironment: false));
        Assert.Contains(e.Messages, m => m.Contains("vary:iommu:iotlb:sets = 3", StringComparison.Ordinal) && m.Contains("power of two", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("iotlb.missrate", "did you mean iotlb.missRate")]
    [InlineData("latencyNs.dma.p98", "plots:0:y = latencyNs.dma.p98: unknown column")]
    [InlineData("name", "not a number")]
    public void Unknown_plot_column_is_bad_input(string y, string expected)
    {
        using var t = new TempSweep(TempSweep.DefaultSweep.Replace("\"iotlb.missRate\"", $"\"{y}\"", StringComparison.Ordinal));
        var err = new StringWriter();
        int rc = CliApp.Run(["sweep", t.SweepPath, "--out", t.Sub("out"), "--quiet"], new StringWriter(), err);
        Assert.Equal(CliApp.BadInput, rc);
        Assert.Contains(expected, err.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(t.Sub("out")));
    }

    [Fact]
    public void Per_device_summary_keys_are_valid_plot_columns()
    {
        using var t = new TempSweep(TempSweep.DefaultSweep.Replace("\"iotlb.missRate\"", "\"devices.dev0.latencyNs.p99\"", StringComparison.Ordinal));
        var plan = SweepPlan.Prepare(t.SweepPath, useEnvironment: false);
        Assert.Equal(12, plan.Points.Count);
    }

    [Theory]
    [InlineData("--shard", "2/2")]
    [InlineData("--jobs", "0")]
    public void Bad_flags_are_bad_input(string flag, string value)
    {
        using var t = new TempSweep();
        var err = new StringWriter();
        int rc = CliApp.Run(["sweep", t.SweepPath, "--out", t.Sub("out"), flag, value], new StringWriter(), err);
        Assert.Equal(CliApp.BadInput, rc);
        Assert.Contains(flag, err.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(t.Sub("out")));
    }

    [Fact]
    public void Known_keys_cover_a_real_summary_and_the_contract_keys_exist()
    {
        var loaded = ConfigLoader.Load(WriteTiny(), useEnvironment: false);
        var known = SummaryKeys.Known(loaded);
        var run = SimulationRunner.Run(ConfigLoader.Load(loaded.SourcePath, useEnvironment: false));
        var keys = SummaryBuilder.Flatten(SummaryBuilder.Build(run)).Select(kv => kv.Key).ToList();
        Assert.Equal([], keys.Where(k => !known.Contains(k)).ToList());
        Assert.Equal([], SummaryKeys.Contract.Where(k => !keys.Contains(k)).ToList());
        Assert.Contains("devices.dev0.latencyNs.p99", known);
        Assert.Contains("faults.byReason.permission", known);
        Assert.DoesNotContain("devices.dev1.bytes", known);
        // the probe leaves the config as it was
        Assert.Equal(2000, loaded.Config.Simulation.MaxRequests);
    }

    private static string WriteTiny()
    {
        string p = Path.Combine(Path.GetTempPath(), $"iommusim-tiny-{Guid.NewGuid():N}.json");
        File.WriteAllText(p, TempSweep.TinyConfig);
        return p;
    }

    [Fact]
    public void Columns_follow_summary_order_with_late_keys_after_their_predecessor()
    {
        var order = SummaryKeys.MergeOrder([
            ["name", "faults.count", "pcie.tlps"],
            ["name", "faults.count", "faults.byReason.permission", "pcie.tlps"],
            ["extra", "name", "faults.count", "faults.byReason.addressWidth", "pcie.tlps"]]);
        Assert.Equal(["extra", "name", "faults.count", "faults.byReason.addressWidth", "faults.byReason.permission", "pcie.tlps"], order);
    }
}
