namespace IommuSim.Cli.Tests.Sweeps;

/// <summary>A temporary folder with a tiny base config (2000 requests) and a sweep file over it.</summary>
internal sealed class TempSweep : IDisposable
{
    public const string TinyConfig = """
    {
      "name": "tiny",
      "simulation": { "seed": 1, "warmupRequests": 200, "maxRequests": 2000 },
      "iommu": { "iotlb": { "sets": 16, "ways": 4 } },
      "translation": { "design": "single-stage" },
      "vms": [ { "name": "vm0", "memoryMiB": 256 } ],
      "devices": [ { "name": "dev0", "bdf": "0000:03:00.0", "maxOutstanding": 32,
          "dmaRegions": [ { "iova": "0x100000000", "bytes": "16MiB" } ] } ],
      "workloads": [ { "device": "dev0", "type": "random", "bytes": 64, "readFraction": 1.0, "workingSetBytes": "1MiB" } ]
    }
    """;

    public const string DefaultSweep = """
    { "name": "tiny-sweep", "base": "tiny.json",
      "vary": { "workloads:0:workingSetBytes": ["64KiB", "1MiB", "4MiB"],
                "iommu:iotlb:sets": [4, 16] },
      "seeds": [1, 2],
      "plots": [ { "x": "workloads:0:workingSetBytes", "y": "iotlb.missRate", "series": "iommu:iotlb:sets", "logX": true } ] }
    """;

    public TempSweep(string sweep = DefaultSweep)
    {
        Dir = Path.Combine(Path.GetTempPath(), "iommusim-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
        File.WriteAllText(Path.Combine(Dir, "tiny.json"), TinyConfig);
        SweepPath = Path.Combine(Dir, "sweep.json");
        File.WriteAllText(SweepPath, sweep);
    }

    public string Dir { get; }
    public string SweepPath { get; }

    public string Sub(string name) => Path.Combine(Dir, name);

    public void Dispose()
    {
        try { Directory.Delete(Dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
