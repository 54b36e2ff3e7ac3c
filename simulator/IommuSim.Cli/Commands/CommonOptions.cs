using System.CommandLine;

namespace IommuSim.Cli.Commands;

internal static class CommonOptions
{
    public static Argument<string> ConfigArgument() => new("config") { Description = "Config file (JSON, see configs/README.md)" };

    public static Option<string[]> Set() => new("--set")
    {
        Description = "Override a config key: --set iommu:iotlb:ways=8 (repeatable)",
        AllowMultipleArgumentsPerToken = false,
        // Each --set needs its KEY=VALUE: a trailing --set with nothing after it is a usage error.
        Arity = ArgumentArity.OneOrMore,
    };
}
