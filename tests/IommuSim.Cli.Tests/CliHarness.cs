using IommuSim.Cli.Commands;

namespace IommuSim.Cli.Tests;

/// <summary>Runs the CLI in-process in a scratch folder and captures its output.</summary>
internal sealed class CliHarness : IDisposable
{
    public CliHarness()
    {
        Dir = Path.Combine(Path.GetTempPath(), "iommusim-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
    }

    public string Dir { get; }

    public static string RepoRoot
    {
        get
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d is not null && !File.Exists(Path.Combine(d.FullName, "IommuSim.sln"))) d = d.Parent;
            return d?.FullName ?? throw new InvalidOperationException("repository root not found");
        }
    }

    public string Write(string name, string text)
    {
        string p = Path.Combine(Dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllText(p, text);
        return p;
    }

    public (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = CliApp.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>A small valid config (a few thousand requests), with optional JSON fragments spliced in.</summary>
    public static string SmallConfig(string name = "small", string design = "single-stage", string workload = """{ "device": "dev0", "type": "random", "bytes": 64, "readFraction": 0.5, "workingSetBytes": "512KiB" }""", long maxRequests = 3000, string extraRoot = "")
        => $$"""
        {
          "name": "{{name}}",
          "simulation": { "seed": 7, "warmupRequests": 100, "maxRequests": {{maxRequests}} },
          "translation": { "design": "{{design}}" },
          "vms": [ { "name": "vm0", "memoryMiB": 256 } ],
          "devices": [
            { "name": "dev0", "bdf": "0000:03:00.0", "maxOutstanding": 16,
              "attach": { "via": "iommufd", "vm": "vm0" },
              "dmaRegions": [ { "iova": "0x100000000", "bytes": "16MiB" } ] }
          ],
          "workloads": [ {{workload}} ]{{extraRoot}}
        }
        """;

    public void Dispose()
    {
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}
