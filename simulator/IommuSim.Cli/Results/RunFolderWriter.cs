using System.Globalization;
using System.Text;
using IommuSim.Cli.Running;
using IommuSim.Engine.Stats;

namespace IommuSim.Cli.Results;

/// <summary>
/// Writes a run's folder atomically: everything goes into a temporary sibling folder that is
/// renamed into place at the end, so an interrupted run never leaves a half-written summary.
/// </summary>
public static class RunFolderWriter
{
    public static void Write(string dir, RunOutput run, Action<string>? extra = null)
    {
        string full = Path.GetFullPath(dir);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            var summary = SummaryBuilder.Build(run);
            File.WriteAllText(Path.Combine(tmp, "summary.json"), SummaryBuilder.ToJson(summary));
            File.WriteAllText(Path.Combine(tmp, "config.resolved.json"), run.Config.ResolvedJson);
            File.WriteAllText(Path.Combine(tmp, "latency.csv"), LatencyCsv(run));
            File.WriteAllText(Path.Combine(tmp, "timeseries.csv"), TimeSeriesCsv(run.TimeSeries));
            extra?.Invoke(tmp);
            Replace(tmp, full);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    /// <summary>Moves a finished temporary folder to <paramref name="final"/>, replacing an older one.</summary>
    public static void Replace(string tmp, string final)
    {
        if (Directory.Exists(final))
        {
            string old = final + $".old-{Environment.ProcessId}-{Guid.NewGuid():N}";
            Directory.Move(final, old);
            Directory.Move(tmp, final);
            TryDelete(old);
        }
        else Directory.Move(tmp, final);
    }

    private static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    public static string LatencyCsv(RunOutput run)
    {
        var sb = new StringBuilder("kind,lowNs,highNs,count\n");
        var dma = new LatencyHistogram("dma");
        foreach (var d in run.Platform.Devices) dma.Add(d.Stats.DmaLatency);
        Append(sb, "translation", run.Platform.Iommu.TranslationLatency, 1000.0);
        Append(sb, "dma", dma, 1000.0);
        Append(sb, "walk", run.Platform.Iommu.WalkLatency, 1000.0);
        foreach (var w in run.Workloads)
            if (w is Workloads.DeviceModels.IDeviceModelStats model)
                foreach (var h in model.Histograms) Append(sb, $"{w.Device.Name}.{h.Name}", h, 1000.0);
        foreach (var (lo, hi, n) in run.Platform.Iommu.WalkReadsPerWalk.Buckets())
            sb.Append(CultureInfo.InvariantCulture, $"walkReads,{lo},{hi},{n}\n");
        return sb.ToString();
    }

    private static void Append(StringBuilder sb, string kind, LatencyHistogram h, double div)
    {
        foreach (var (lo, hi, n) in h.Buckets())
            sb.Append(CultureInfo.InvariantCulture, $"{kind},{lo / div:0.###},{(hi + 1) / div:0.###},{n}\n");
    }

    public static string TimeSeriesCsv(IReadOnlyList<TimeSample> samples)
    {
        var sb = new StringBuilder("timeNs,iotlbLookups,iotlbMisses,completed,bytes\n");
        foreach (var s in samples)
            sb.Append(CultureInfo.InvariantCulture, $"{s.TimeNs:0.###},{s.IotlbLookups},{s.IotlbMisses},{s.Completed},{s.Bytes}\n");
        return sb.ToString();
    }
}
