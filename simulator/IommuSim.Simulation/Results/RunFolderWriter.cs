using System.Globalization;
using System.Text;
using IommuSim.Simulation.Running;
using IommuSim.Engine.Stats;

namespace IommuSim.Simulation.Results;

/// <summary>
/// Writes a run's folder atomically: everything goes into a temporary sibling folder that is
/// renamed into place at the end, so an interrupted run never leaves a half-written summary.
/// </summary>
public static class RunFolderWriter
{
    /// <param name="cleanLeftovers">Remove what interrupted runs of the same name left next to it (a sweep cleans its points folder once instead).</param>
    public static void Write(string dir, RunOutput run, Action<string>? extra = null, bool cleanLeftovers = true)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
        OutputGuard.CheckTarget(dir, "--out", OutputGuard.RunMarker);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        if (cleanLeftovers) OutputGuard.CleanLeftovers(parent, Path.GetFileName(full));
        string tmp = OutputGuard.TempSibling(full);
        OutputGuard.Track(tmp);
        try
        {
            Directory.CreateDirectory(tmp);
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
            OutputGuard.Delete(tmp);
            throw;
        }
        finally
        {
            OutputGuard.Forget(tmp);
        }
    }

    /// <summary>
    /// Moves a finished temporary folder to <paramref name="final"/>, replacing an older one. Under
    /// the interrupt lock, so Ctrl-C never leaves the old result moved away and the new one not in place.
    /// </summary>
    public static void Replace(string tmp, string final) => OutputGuard.Critical(() =>
    {
        if (Directory.Exists(final))
        {
            string old = OutputGuard.OldSibling(final);
            Directory.Move(final, old);
            Directory.Move(tmp, final);
            OutputGuard.Delete(old);
        }
        else Directory.Move(tmp, final);
    });

    /// <summary>The latency histograms latency.csv lists, in its order, by kind (values in ps; the walk-reads counts apart).
    /// A kind listed twice (two models on one device) keeps its first histogram here; latency.csv has both.</summary>
    public static IReadOnlyDictionary<string, LatencyHistogram> Histograms(RunOutput run)
    {
        var all = new Dictionary<string, LatencyHistogram>(StringComparer.Ordinal);
        foreach (var (kind, h) in HistogramList(run)) all.TryAdd(kind, h);
        return all;
    }

    private static IEnumerable<(string Kind, LatencyHistogram Histogram)> HistogramList(RunOutput run)
    {
        var dma = new LatencyHistogram("dma");
        foreach (var d in run.Platform.Devices) dma.Add(d.Stats.DmaLatency);
        // On SMMUv3 the translation and walk histograms are the SMMU's (the VT-d unit is idle), plus its configuration fetches.
        var smmu = run.Platform.Smmu;
        yield return ("translation", smmu?.TranslationLatency ?? run.Platform.Iommu.TranslationLatency);
        yield return ("dma", dma);
        yield return ("walk", smmu?.Walker.WalkLatency ?? run.Platform.Iommu.WalkLatency);
        if (smmu is not null) yield return ("configFetch", smmu.Statistics.ConfigFetchLatency);
        foreach (var w in run.Workloads)
            if (w is Workloads.DeviceModels.IDeviceModelStats model)
                foreach (var h in model.Histograms) yield return ($"{w.Device.Name}.{h.Name}", h);
    }

    public static string LatencyCsv(RunOutput run)
    {
        var sb = new StringBuilder("kind,lowNs,highNs,count\n");
        foreach (var (kind, h) in HistogramList(run)) Append(sb, kind, h, 1000.0);
        foreach (var (lo, hi, n) in (run.Platform.Smmu?.Walker.WalkReads ?? run.Platform.Iommu.WalkReadsPerWalk).Buckets())
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
