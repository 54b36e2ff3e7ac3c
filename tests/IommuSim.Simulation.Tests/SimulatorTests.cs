using System.Text.Json.Nodes;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Sweeps;

namespace IommuSim.Simulation.Tests;

/// <summary>The library's public entry point, driven from code as a notebook or test harness would (no CLI).</summary>
public class SimulatorTests
{
    private static readonly string[] Small = ["simulation:maxRequests=5000"];

    private static string WithoutWallClock(RunResult r)
    {
        var s = (JsonObject)r.Summary.DeepClone();
        var sim = (JsonObject)s["sim"]!;
        sim.Remove("wallSeconds");
        sim.Remove("eventsPerSecond");
        return s.ToJsonString();
    }

    [Fact]
    public void Quickstart_runs_from_code_with_the_summary_keys_of_docs_results()
    {
        var config = Simulator.LoadConfig(Repo.Config("quickstart.json"), Small);
        Assert.Equal(5000, config.Config.Simulation.MaxRequests);
        var r = Simulator.Run(config);

        var keys = r.Flattened;
        foreach (var k in SummaryKeys.Contract) Assert.True(keys.ContainsKey(k), $"summary lacks {k}");
        Assert.Equal("quickstart", keys["name"]!.GetValue<string>());
        Assert.Equal(5000, keys["requests.completed"]!.GetValue<long>());
        Assert.Equal(0, keys["faults.count"]!.GetValue<long>());
        Assert.InRange(keys["iotlb.missRate"]!.GetValue<double>(), 0.0, 1.0);
        Assert.True(keys["throughput.gbps"]!.GetValue<double>() > 0);
        // The flattened keys are the summary's leaves: the same value both ways.
        Assert.Equal(r.Summary["requests"]!["completed"]!.GetValue<long>(), keys["requests.completed"]!.GetValue<long>());
    }

    [Fact]
    public void Two_runs_of_one_config_give_identical_summaries_and_another_seed_does_not()
    {
        string a = WithoutWallClock(Simulator.Run(Simulator.LoadConfig(Repo.Config("quickstart.json"), Small)));
        string b = WithoutWallClock(Simulator.Run(Simulator.LoadConfig(Repo.Config("quickstart.json"), Small)));
        Assert.Equal(a, b);
        string c = WithoutWallClock(Simulator.Run(Simulator.LoadConfig(Repo.Config("quickstart.json"), Small, seed: 2)));
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Histograms_hold_every_measured_request_and_match_the_summary()
    {
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("quickstart.json"), ["simulation:maxRequests=2000"]));
        var h = r.Histograms;
        Assert.Equal(["translation", "dma", "walk"], h.Keys.Take(3));
        Assert.True(h["dma"].Count >= 2000, $"dma histogram has {h["dma"].Count} samples");
        Assert.Equal(r.Flattened["latencyNs.dma.p99"]!.GetValue<double>(), h["dma"].Percentile(99) / 1000.0, 3);
        Assert.StartsWith("kind,lowNs,highNs,count\n", r.LatencyCsv, StringComparison.Ordinal);
    }

    [Fact]
    public void WriteFolder_writes_the_summary_the_result_holds_and_refuses_a_foreign_folder()
    {
        using var t = new TempDir();
        var r = Simulator.Run(Simulator.LoadConfig(Repo.Config("quickstart.json"), ["simulation:maxRequests=1000"]));
        r.WriteFolder(t.Sub("run"));
        Assert.Equal(r.SummaryJson, File.ReadAllText(Path.Combine(t.Sub("run"), "summary.json")));
        foreach (var f in new[] { "config.resolved.json", "latency.csv", "timeseries.csv" }) Assert.True(File.Exists(Path.Combine(t.Sub("run"), f)), f);

        Directory.CreateDirectory(t.Sub("mine"));
        File.WriteAllText(Path.Combine(t.Sub("mine"), "notes.txt"), "keep");
        var e = Assert.Throws<ConfigError>(() => r.WriteFolder(t.Sub("mine")));
        Assert.Contains("not a previous IommuSim result", e.Message, StringComparison.Ordinal);
        Assert.Equal("keep", File.ReadAllText(Path.Combine(t.Sub("mine"), "notes.txt")));
    }

    [Theory]
    [InlineData("simulation:maxRequests=-1", "simulation:maxRequests")]
    [InlineData("translation:design=sideways", "translation:design")]
    public void Bad_overrides_are_one_message_naming_the_key(string set, string key)
    {
        var e = Assert.Throws<ConfigError>(() => Simulator.LoadConfig(Repo.Config("quickstart.json"), [set]));
        Assert.Contains(e.Messages, m => m.Contains(key, StringComparison.Ordinal));
    }

    private sealed class CountingObserver : Workloads.IRequestObserver
    {
        public long Issued;
        public void OnIssued(long timePs, string device, uint? pasid, ulong iova, int bytes, bool write) => Issued++;
    }

    [Fact]
    public void Run_hooks_see_the_built_system_before_it_runs_and_every_issued_request()
    {
        var config = Simulator.LoadConfig(Repo.Config("designs/nested.json"), ["simulation:maxRequests=2000", "simulation:warmupRequests=0"]);
        Simulator.Preflight(config);
        var observer = new CountingObserver();
        long issuedAtBuild = -1;
        bool iommuOnPath = false;
        var r = Simulator.Run(config, observer: observer, preflightDone: true, instrument: (system, _) =>
        {
            issuedAtBuild = observer.Issued;
            iommuOnPath = system.Platform.IommuOnPath;
        });
        Assert.Equal(0, issuedAtBuild);
        Assert.True(iommuOnPath);
        Assert.True(observer.Issued >= 2000, $"{observer.Issued} requests observed");
        Assert.Equal("nested", r.Flattened["design"]!.GetValue<string>());
    }

    [Fact]
    public void A_missing_config_file_is_a_config_error_naming_it()
    {
        var e = Assert.Throws<ConfigError>(() => Simulator.LoadConfig("/nonexistent/x.json"));
        Assert.Contains("/nonexistent/x.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_library_depends_on_no_plotting_console_or_command_line_package()
    {
        var refs = typeof(Simulator).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.DoesNotContain(refs, n => n.StartsWith("ScottPlot", StringComparison.Ordinal) || n.StartsWith("Spectre", StringComparison.Ordinal)
            || n == "System.CommandLine" || n == "iommusim");
        Assert.Contains("IommuSim.Workloads", refs);
    }
}

/// <summary>Config checks the library owns (ConfigValidator), found by driving the library as a user would.</summary>
public class ValidationTests
{
    // Two workloads on one device: each completion goes back to its issuer (DmaRequest.Owner); each needs its own
    // share of the device's tags, or a closed loop asking for all of them would starve the other.
    private static string TwoOnOneDevice(TempDir t, string first, string second, string outstanding)
    {
        string path = t.Sub("two.json");
        File.WriteAllText(path, $$"""
        { "name": "two", "simulation": { "seed": 1, "warmupRequests": 0, "maxRequests": 2000 },
          "translation": { "design": "single-stage" },
          "devices": [ { "name": "dev0", "bdf": "0000:03:00.0", "maxOutstanding": 32, "dmaRegions": [ { "iova": "0x100000000", "bytes": "16MiB" } ] } ],
          "workloads": [ { "device": "dev0", "type": "{{first}}", "bytes": 64, "workingSetBytes": "512KiB"{{outstanding}} },
                         { "device": "dev0", "type": "{{second}}", "bytes": 64, "workingSetBytes": "512KiB"{{outstanding}} } ] }
        """);
        return path;
    }

    [Theory]
    [InlineData("random", "random")]
    [InlineData("stream", "zipf")]
    public void Two_workloads_share_a_device_when_each_has_its_share_of_its_tags(string first, string second)
    {
        using var t = new TempDir();
        var e = Assert.Throws<ConfigError>(() => Simulator.LoadConfig(TwoOnOneDevice(t, first, second, "")));
        Assert.Contains(e.Messages, m => m.Contains("workloads:1:outstanding: device dev0 is shared by 2 workloads", StringComparison.Ordinal));
        var tooMany = Assert.Throws<ConfigError>(() => Simulator.LoadConfig(TwoOnOneDevice(t, first, second, ", \"outstanding\": 20")));
        Assert.Contains(tooMany.Messages, m => m.Contains("ask for 40 requests in flight together", StringComparison.Ordinal));
        var run = Simulator.Run(Simulator.LoadConfig(TwoOnOneDevice(t, first, second, ", \"outstanding\": 16")));
        Assert.Equal(2000, run.Flattened["requests.completed"]!.GetValue<long>());
    }
}
