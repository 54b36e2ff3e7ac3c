using IommuSim.Simulation.Config;

namespace IommuSim.Simulation.Tests;

/// <summary>The keys added for the Rubin et al. (SOSP'24) reproduction: bad values name the key as written.</summary>
public class RubinConfigValidationTests
{
    private static string Rubin => Repo.Config(Path.Combine("reference", "rubin-sosp24.json"));

    [Theory]
    [InlineData("translation:dmaApi:invalidationHint=sometimes", "translation:dmaApi:invalidationHint = sometimes: allowed values are never, kernel, always")]
    [InlineData("workloads:0:nic:iovaBatch=6", "workloads:0:nic:iovaBatch = 6: must be a power of two in [1, 256]")]
    [InlineData("workloads:0:nic:iovaBatch=256", "workloads:0:nic:iovaBatch = 256: must be at most ringSize / 2 (128)")]
    [InlineData("workloads:0:nic:txFraction=2", "workloads:0:nic:txFraction = 2: must be in [0, 1]")]
    [InlineData("workloads:0:nic:txBytes=0", "workloads:0:nic:txBytes = 0: must be in [1, 65536]")]
    public void Bad_values_are_named(string set, string message)
    {
        var e = Assert.Throws<ConfigError>(() => Simulator.LoadConfig(Rubin, [set]));
        Assert.Contains(e.Messages, m => m.Contains(message, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("never")]
    [InlineData("kernel")]
    [InlineData("always")]
    public void Each_hint_loads(string hint)
        => Simulator.LoadConfig(Rubin, [$"translation:dmaApi:invalidationHint={hint}", "workloads:0:nic:iovaBatch=8"]);
}
