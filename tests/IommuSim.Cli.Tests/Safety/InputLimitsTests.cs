using IommuSim.Simulation.Config;
using IommuSim.Cli.Tests.Sweeps;

namespace IommuSim.Cli.Tests.Safety;

/// <summary>
/// Issue 13, item 2: every input is checked before any work, with exit 2 and a message naming the
/// file and key, the --set argument or the environment variable as the user wrote it. Each case
/// below crashed (exit 1), hung or was silently accepted before (the crash classes).
/// </summary>
public class InputLimitsTests
{
    private static string Cfg(CliHarness h, string design = "single-stage") => h.Write("c.json", CliHarness.SmallConfig(design: design, maxRequests: 100));

    [Theory]
    [InlineData("simulation:maxSimulatedUs=1e20", "simulation:maxSimulatedUs = 1E+20: must be at most 1000000000000")]
    [InlineData("simulation:sampleIntervalUs=1e20", "simulation:sampleIntervalUs = 1E+20: must be in [0.001, 1000000000000]")]
    [InlineData("simulation:sampleIntervalUs=1e-9", "simulation:sampleIntervalUs = 1E-09: must be in")]
    [InlineData("simulation:maxRequests=9000000000000000000", "simulation:maxRequests = 9000000000000000000: must be at most")]
    [InlineData("memory:bandwidthGBps=1e-300", "memory:bandwidthGBps = 1E-300: must be at least 0.01")]
    [InlineData("iommu:clockMHz=0.0001", "iommu:clockMHz = 0.0001: must be at least 0.001 MHz")]
    [InlineData("translation:dmaApi:flushTimeoutUs=1e20", "translation:dmaApi:flushTimeoutUs = 1E+20: must be at most")]
    [InlineData("workloads:0:iova=0xfffffffffffff000", "workloads:0:iova = 0xfffffffffffff000: the window [0xfffffffffffff000, +512KiB) wraps past 2^64")]
    [InlineData("devices:0:dmaRegions:0:iova=0xfee00000", "devices:0:dmaRegions:0: [0xfee00000, 0xffe00000) overlaps the MSI window")]
    [InlineData("devices:0:dmaRegions:0:iova=0x1000000000000", "devices:0:dmaRegions:0: [0x1000000000000, 0x1000001000000) lies above the aperture (IOVAs up to 0xffffffffffff, 48 bits with translation:stage2:levels = 4)")]
    [InlineData("devices:0:dmaRegions:0:bytes=1TiB", "at most 65536 MiB (64 GiB)")]
    [InlineData("iommu:iotlb=4", "iommu:iotlb = 4: expected an object")]
    [InlineData("devices:7:name=x", "devices:7: no such element; devices has 1 (indices 0 to 0), and a new one must be devices:1")]
    [InlineData("devices=x", "devices = x: expected a list")]
    public void A_value_the_run_cannot_execute_is_bad_input_blaming_the_set_argument(string set, string message)
    {
        using var h = new CliHarness();
        string cfg = Cfg(h);
        var (code, _, err) = h.Run("run", cfg, "--no-plots", "--out", Path.Combine(h.Dir, "o"), "--set", set);
        Assert.True(code == 2, err);
        Assert.Contains(message, err, StringComparison.Ordinal);
        Assert.StartsWith($"config error: --set {set}: ", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(h.Dir, "o")));
    }

    [Theory]
    [InlineData("workloads:0:rateMrps=1e-300", "workloads:0:rateMrps = 1E-300: too low")]
    [InlineData("workloads:0:burstSize=1000000", "workloads:0:rateMrps = 1E-05: too low; the mean gap between arrivals (bursts of 1000000)")]
    public void Arrival_rates_whose_gaps_do_not_fit_are_bad_input(string set, string message)
    {
        using var h = new CliHarness();
        var (code, _, err) = h.Run("check", Cfg(h), "--set", "workloads:0:arrival=bursty", "--set", "workloads:0:rateMrps=1e-5", "--set", set);
        Assert.Equal(2, code);
        Assert.Contains(message, err, StringComparison.Ordinal);
    }

    [Fact]
    public void The_largest_vm_memory_is_refused_before_building()
    {
        using var h = new CliHarness();
        var (code, _, err) = h.Run("run", Cfg(h, "nested"), "--no-plots", "--out", Path.Combine(h.Dir, "o"), "--set", "vms:0:memoryMiB=16777216");
        Assert.Equal(2, code);
        Assert.Contains("vms:0:memoryMiB: the config maps", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Values_at_the_limits_run()
    {
        // The bounds are what the run can execute: at them, a short run completes (exit 0).
        using var h = new CliHarness();
        var (code, _, err) = h.Run("run", Cfg(h), "--no-plots", "--quiet", "--out", Path.Combine(h.Dir, "o"),
            "--set", "simulation:maxRequests=20", "--set", "simulation:warmupRequests=0", "--set", $"simulation:maxSimulatedUs={RunLimits.MaxSimulatedUs}",
            "--set", $"memory:bandwidthGBps={RunLimits.MinBandwidthGBps}", "--set", $"iommu:clockMHz={RunLimits.MinClockMHz}",
            "--set", "workloads:0:arrival=poisson", "--set", "workloads:0:rateMrps=1e-9", "--set", "simulation:sampleIntervalUs=0.001");
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(h.Dir, "o", "summary.json")));
    }

    [Fact]
    public void Duplicate_and_overlapping_dma_regions_name_file_and_key()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig().Replace("""[ { "iova": "0x100000000", "bytes": "16MiB" } ]""",
            """[ { "iova": "0x100000000", "bytes": "16MiB" }, { "iova": "0x100000000", "bytes": "16MiB" }, { "iova": "0x100800000", "bytes": "16MiB" } ]""", StringComparison.Ordinal));
        var (code, _, err) = h.Run("check", cfg);
        Assert.Equal(2, code);
        Assert.Contains($"config error: {cfg}: devices:0:dmaRegions:1: the same range as devices:0:dmaRegions:0", err, StringComparison.Ordinal);
        Assert.Contains($"config error: {cfg}: devices:0:dmaRegions:2: [0x100800000, 0x101800000) overlaps devices:0:dmaRegions:0", err, StringComparison.Ordinal);
        Assert.DoesNotContain("IOAS_MAP", err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_trace_time_near_2_to_the_63_ns_is_bad_input_naming_the_line()
    {
        using var h = new CliHarness();
        h.Write("t.csv", "time_ns,device,pasid,iova,bytes,op\n0,dev0,,0x100000000,64,R\n9223372036854775,dev0,,0x100000000,64,R\n");
        string cfg = h.Write("c.json", CliHarness.SmallConfig(workload: """{ "device": "dev0", "type": "trace", "path": "t.csv" }"""));
        var (code, _, err) = h.Run("run", cfg, "--no-plots", "--out", Path.Combine(h.Dir, "o"));
        Assert.Equal(2, code);
        Assert.Contains("t.csv:3: time 9223372036854775 ns: issue times must be at most", err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_trailing_set_without_value_and_jobs_abc_are_usage_errors_in_words()
    {
        using var h = new CliHarness();
        var r = h.Run("check", Cfg(h), "--set");
        Assert.Equal(2, r.Code);
        Assert.Contains("Required argument missing for option: '--set'", r.Err, StringComparison.Ordinal);
        r = h.Run("check", Cfg(h), "--set", "=4");
        Assert.Equal(2, r.Code);
        Assert.Contains("--set =4: expected KEY=VALUE", r.Err, StringComparison.Ordinal);
        r = h.Run("sweep", "x.json", "--jobs", "abc");
        Assert.Equal(2, r.Code);
        Assert.Contains("error: --jobs abc: expected an integer", r.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", r.Err, StringComparison.Ordinal);
        r = h.Run("run", Cfg(h), "--seed", "-1");
        Assert.Contains("error: --seed -1: expected a non-negative integer", r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void An_environment_variable_is_named_in_its_error()
    {
        using var h = new CliHarness();
        var (code, _, err) = CliProcess.Run(h.Dir, ["check", Cfg(h)], ("IOMMUSIM__IOMMU__CLOCKMHZ", "0.0001"));
        Assert.Equal(2, code);
        Assert.StartsWith("config error: environment variable IOMMUSIM__IOMMU__CLOCKMHZ: iommu:clockMHz = 0.0001", err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_sweep_file_with_duplicate_keys_is_bad_input()
    {
        using var t = new TempSweep(TempSweep.DefaultSweep.Replace("\"seeds\": [1, 2],", "\"seeds\": [1, 2], \"seeds\": [3],", StringComparison.Ordinal));
        var h = new CliHarness();
        var (code, _, err) = h.Run("sweep", t.SweepPath, "--out", t.Sub("o"));
        h.Dispose();
        Assert.Equal(2, code);
        Assert.Contains($"sweep error: {t.SweepPath}:", err, StringComparison.Ordinal);
        Assert.Contains("seeds", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(t.Sub("o")));
    }

    [Fact]
    public void A_config_file_with_duplicate_keys_is_bad_input()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig().Replace("\"name\": \"small\",", "\"name\": \"small\", \"name\": \"other\",", StringComparison.Ordinal));
        var (code, _, err) = h.Run("check", cfg);
        Assert.Equal(2, code);
        Assert.Contains($"config error: {cfg}:", err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_sweep_over_the_point_cap_is_refused_before_any_config_is_loaded()
    {
        string values = string.Join(", ", Enumerable.Range(1, 400));
        using var t = new TempSweep($$"""{ "name": "big", "base": "tiny.json", "vary": { "iommu:iotlb:ways": [{{values}}], "workloads:0:bytes": [{{values}}] } }""");
        var h = new CliHarness();
        var (code, _, err) = h.Run("sweep", t.SweepPath, "--out", t.Sub("o"), "--dry-run");
        h.Dispose();
        Assert.Equal(2, code);
        Assert.Contains("more than 100000 points", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nested", "64", false)]
    [InlineData("shadow", "64", false)]
    [InlineData("nested", "82", true)]
    public void A_vm_too_small_for_its_dma_buffers_names_the_vm_and_the_region(string design, string memoryMiB, bool fits)
    {
        // Buffers start at GPA 1 MiB and the top 64 MiB hold the guest's tables: 16 MiB needs 1 + 16 + 64 = 81 MiB.
        using var h = new CliHarness();
        var (code, _, err) = h.Run("run", Cfg(h, design), "--no-plots", "--quiet", "--out", Path.Combine(h.Dir, "o"), "--set", $"vms:0:memoryMiB={memoryMiB}");
        if (fits)
        {
            Assert.True(code == 0, err);
            return;
        }
        Assert.Equal(2, code);
        Assert.Contains($"config error: --set vms:0:memoryMiB={memoryMiB}: vms:0:memoryMiB = {memoryMiB}: too small for the DMA buffers the guest places in it (devices:0:dmaRegions:0 needs at least 81 MiB", err, StringComparison.Ordinal);
    }
}
