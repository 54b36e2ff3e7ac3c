using System.Globalization;
using IommuSim.Engine.Units;
using MathNet.Numerics.Distributions;
using ScottPlot;

namespace IommuSim.Cli.Plots;

/// <summary>Shared plot conventions: sizes, labels with units, log-axis ticks, confidence intervals, atomic PNG writes.</summary>
internal static class PlotKit
{
    public const int Width = 1100;
    public const int Height = 620;

    public static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    public static Color ColorOf(int i) => Palette.GetColor(i % Palette.Colors.Length);

    /// <summary>A new plot with readable fonts.</summary>
    public static Plot NewPlot(string title, string xLabel, string yLabel)
    {
        var p = new Plot();
        p.Font.Set("DejaVu Sans");
        p.Title(title);
        p.Axes.Title.Label.FontSize = 18;
        p.XLabel(xLabel);
        p.YLabel(yLabel);
        p.Axes.Bottom.Label.FontSize = 15;
        p.Axes.Left.Label.FontSize = 15;
        p.Axes.Bottom.TickLabelStyle.FontSize = 13;
        p.Axes.Left.TickLabelStyle.FontSize = 13;
        p.Legend.FontSize = 13;
        return p;
    }

    public static void Save(Plot p, string path, int width = Width, int height = Height)
        => Simulation.Sweeps.AtomicFile.Write(path, tmp => p.SavePng(tmp, width, height));

    // ---- statistics -----------------------------------------------------------------------

    /// <summary>Mean and the half-width of its 95 % confidence interval (Student t, n−1 degrees of freedom); 0 for one sample.</summary>
    public static (double Mean, double Half) MeanCi(IReadOnlyList<double> v)
    {
        int n = v.Count;
        if (n == 0) return (double.NaN, 0);
        double mean = v.Average();
        if (n < 2) return (mean, 0);
        double ss = v.Sum(x => (x - mean) * (x - mean));
        double sd = Math.Sqrt(ss / (n - 1));
        double t = StudentT.InvCDF(0, 1, n - 1, 0.975);
        return (mean, t * sd / Math.Sqrt(n));
    }

    // ---- labels -----------------------------------------------------------------------------

    private static readonly Dictionary<string, string> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["iotlb.missRate"] = "IOTLB miss rate (fraction of lookups)",
        ["per4KiB.iotlbMisses"] = "IOTLB misses per 4 KiB of data",
        ["per4KiB.walks"] = "Page walks per 4 KiB of data",
        ["per4KiB.pdeCacheMisses"] = "PDE-cache misses per 4 KiB of data",
        ["per4KiB.pdpteCacheMisses"] = "PDPTE-cache misses per 4 KiB of data",
        ["per4KiB.pml4eCacheMisses"] = "PML4E-cache misses per 4 KiB of data",
        ["per4KiB.iommuMemoryReads"] = "IOMMU memory reads per 4 KiB of data",
        ["iotlb.entries"] = "IOTLB entries",
        ["iotlb.misses"] = "IOTLB misses",
        ["iotlb.lookups"] = "IOTLB lookups",
        ["throughput.gbps"] = "Throughput (Gbit/s)",
        ["throughput.mrps"] = "Request rate (million requests/s)",
        ["walks.readsPerWalk"] = "Memory reads per page walk",
        ["walks.meanLatencyNs"] = "Mean page-walk latency (ns)",
        ["walks.memoryReads"] = "Page-table reads",
        ["walks.count"] = "Page walks",
        ["pcie.linkUtilization"] = "PCIe link utilization (fraction)",
        ["sim.simulatedNs"] = "Simulated time (ns)",
        ["sim.wallSeconds"] = "Wall-clock time (s)",
        ["sim.eventsPerSecond"] = "Simulator speed (events/s)",
        ["security.staleTranslationsUsed"] = "Stale translations used",
        ["seed"] = "Seed",
    };

    private static readonly Dictionary<string, string> Percentiles = new(StringComparer.Ordinal)
    {
        ["mean"] = "mean", ["p50"] = "median", ["p90"] = "90th percentile", ["p95"] = "95th percentile", ["p99"] = "99th percentile",
        ["p999"] = "99.9th percentile", ["max"] = "maximum", ["count"] = "samples",
    };

    /// <summary>Known config keys (vary keys), with the list index replaced by N.</summary>
    private static readonly Dictionary<string, (string Long, string Short)> ConfigNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["workloads:N:workingSetBytes"] = ("Working set (bytes)", "working set"),
        ["workloads:N:bytes"] = ("Request size (bytes)", "request size"),
        ["workloads:N:rateMrps"] = ("Offered load (million requests/s)", "offered load"),
        ["workloads:N:readFraction"] = ("Fraction of reads", "reads"),
        ["workloads:N:type"] = ("Workload", "workload"),
        ["workloads:N:outstanding"] = ("Requests in flight", "in flight"),
        ["iommu:iotlb:sets"] = ("IOTLB sets", "IOTLB sets"),
        ["iommu:iotlb:ways"] = ("IOTLB ways", "IOTLB ways"),
        ["iommu:iotlb:entries"] = ("IOTLB entries", "IOTLB entries"),
        ["iommu:iotlb:replacement"] = ("IOTLB replacement policy", "replacement"),
        ["iommu:walkCaches:enabled"] = ("Paging-structure (walk) caches", "walk caches"),
        ["iommu:walkCaches:entriesPerLevel"] = ("Walk-cache entries per level", "walk-cache entries"),
        ["iommu:walkers:count"] = ("Page walkers", "walkers"),
        ["translation:design"] = ("Translation design", "design"),
        ["translation:stage1:pageSize"] = ("Stage-1 page size", "stage-1 pages"),
        ["translation:stage2:pageSize"] = ("Stage-2 page size", "stage-2 pages"),
        ["translation:stage1:levels"] = ("Stage-1 levels", "stage-1 levels"),
        ["translation:stage2:levels"] = ("Stage-2 levels", "stage-2 levels"),
        ["translation:dmaApi:mode"] = ("DMA API mode", "DMA API"),
        ["translation:dmaApi:leafOnlyInvalidation"] = ("Leaf-only (IH) unmap invalidations", "leaf-only IH"),
        ["translation:dmaApi:invalidationHint"] = ("IH hint of unmap invalidations", "IH"),
        ["workloads:N:nic:iovaBatch"] = ("Ring buffers per contiguous IOVA batch", "IOVA batch"),
        ["workloads:N:nic:txFraction"] = ("Transmitted packets per received packet", "TX per RX"),
        ["workloads:N:nic:queues"] = ("NIC queues (flows, one driver CPU each)", "queues"),
        ["iommu:walkCaches:pdeEntries"] = ("PDE-cache entries", "PDE entries"),
        ["memory:latencyNs"] = ("Memory latency (ns)", "memory latency"),
        ["pcie:generation"] = ("PCIe generation", "PCIe gen"),
        ["pcie:lanes"] = ("PCIe lanes", "lanes"),
    };

    private static string Generic(string key) => System.Text.RegularExpressions.Regex.Replace(key, ":[0-9]+:", ":N:");

    /// <summary>An axis label with its unit.</summary>
    public static string Label(string key)
    {
        if (Names.TryGetValue(key, out var n)) return n;
        if (ConfigNames.TryGetValue(Generic(key), out var c)) return c.Long;
        var parts = key.Split('.');
        if (parts.Length == 3 && parts[0] == "latencyNs" && Percentiles.TryGetValue(parts[2], out var pct))
        {
            string what = parts[1] switch { "translation" => "Translation latency", "dma" => "DMA latency", _ => Humanize(parts[1]) + " latency" };
            return parts[2] == "count" ? $"{what}: samples" : $"{what}, {pct} (ns)";
        }
        if (parts.Length == 5 && parts[0] == "devices" && parts[2] == "latencyNs" && Percentiles.TryGetValue(parts[4], out var dp))
            return $"{parts[1]} DMA latency, {dp} (ns)";
        var segs = key.Split('.', ':');
        string last = segs.LastOrDefault(x => x.EndsWith("Ns", StringComparison.Ordinal) || x.EndsWith("Us", StringComparison.Ordinal)
                                              || x.EndsWith("Bytes", StringComparison.OrdinalIgnoreCase) || x == "bytes"
                                              || x.EndsWith("Gbps", StringComparison.OrdinalIgnoreCase) || x.EndsWith("Rate", StringComparison.Ordinal)) ?? segs[^1];
        string unit = last.EndsWith("Ns", StringComparison.Ordinal) ? " (ns)"
            : last.EndsWith("Us", StringComparison.Ordinal) ? " (µs)"
            : last.EndsWith("Bytes", StringComparison.OrdinalIgnoreCase) || last == "bytes" ? " (bytes)"
            : last.EndsWith("Gbps", StringComparison.OrdinalIgnoreCase) ? " (Gbit/s)"
            : last.EndsWith("Rate", StringComparison.Ordinal) ? " (fraction)" : "";
        return Humanize(key) + unit;
    }

    /// <summary>"dmaApi.unmapLatencyNs.mean" → "DMA API unmap latency, mean": words from camelCase, the unit suffix
    /// dropped (the caller appends it), a trailing statistic after a comma.</summary>
    internal static string Humanize(string key)
    {
        var segs = key.Split('.', ':').Where(x => x.Length > 0).ToList();
        string? stat = segs.Count > 1 && Percentiles.TryGetValue(segs[^1], out var st) ? st : null;
        if (stat is not null) segs.RemoveAt(segs.Count - 1);
        var words = new List<string>();
        foreach (var seg in segs)
        {
            if (int.TryParse(seg, NumberStyles.None, CultureInfo.InvariantCulture, out _)) { words.Add(seg); continue; }
            string x = System.Text.RegularExpressions.Regex.Replace(seg, "(Ns|Us|Bytes|Gbps)$", "");
            string? abbr = x switch { "dmaApi" => "DMA API", "iotlb" => "IOTLB", "pcie" => "PCIe", "ats" => "ATS", "iommu" => "IOMMU", "dma" => "DMA", _ => null };
            words.Add(abbr ?? System.Text.RegularExpressions.Regex.Replace(x, "(?<=[a-z0-9])(?=[A-Z])", " ").ToLowerInvariant());
        }
        string text = string.Join(" ", words);
        if (stat is not null) text += ", " + stat;
        return text.Length == 0 ? key : char.ToUpperInvariant(text[0]) + text[1..];
    }

    /// <summary>The label without its unit (for titles).</summary>
    public static string Name(string key)
    {
        string l = Label(key);
        int paren = l.LastIndexOf(" (", StringComparison.Ordinal);
        return paren > 0 ? l[..paren] : l;
    }

    /// <summary>A short name for legends: "IOTLB sets", "stage-2 pages".</summary>
    public static string ShortName(string key)
        => ConfigNames.TryGetValue(Generic(key), out var c) ? c.Short : Name(key);

    /// <summary>A value as shown in a legend or tick: sizes in KiB/MiB, booleans as on/off.</summary>
    public static string ValueText(string key, string value)
    {
        if (value is "true" or "false" && key.EndsWith(":enabled", StringComparison.OrdinalIgnoreCase)) return value == "true" ? "on" : "off";
        if (IsSizeKey(key) && ByteSize.TryParse(value, out var b, out _)) return Bytes(b.Bytes);
        return value;
    }

    public static bool IsSizeKey(string key) => key.EndsWith("Bytes", StringComparison.OrdinalIgnoreCase) || key.EndsWith(":bytes", StringComparison.OrdinalIgnoreCase);

    public static string Bytes(double b)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        int u = 0;
        while (Math.Abs(b) >= 1024 && u < units.Length - 1) { b /= 1024; u++; }
        return string.Create(CultureInfo.InvariantCulture, $"{b:0.##} {units[u]}");
    }

    public static string Number(double v)
    {
        double a = Math.Abs(v);
        if (a == 0) return "0";
        if (a >= 1e6 || a < 1e-3) return v.ToString("0.##E+0", CultureInfo.InvariantCulture);
        return v.ToString(a >= 100 ? "#,0" : a >= 1 ? "0.##" : "0.###", CultureInfo.InvariantCulture);
    }

    // ---- log axes ---------------------------------------------------------------------------

    /// <summary>Manual ticks for an axis whose data are log10 of the values in [min, max]:
    /// powers of two (sizes) or 1-2-5 decades, thinned to at most ~10 labels.</summary>
    public static ScottPlot.TickGenerators.NumericManual LogTicks(double min, double max, bool sizes)
    {
        var gen = new ScottPlot.TickGenerators.NumericManual();
        foreach (var (pos, label, major) in LogTickList(min, max, sizes))
            if (major) gen.AddMajor(pos, label);
            else gen.AddMinor(pos);
        return gen;
    }

    /// <summary>The ticks of <see cref="LogTicks"/>: (log10 position, label, major).</summary>
    public static List<(double Position, string Label, bool Major)> LogTickList(double min, double max, bool sizes)
    {
        var gen = new List<(double Position, string Label, bool Major)>();
        if (!(min > 0) || !(max >= min)) return gen;
        var ticks = new List<double>();
        if (sizes)
        {
            int lo = (int)Math.Floor(Math.Log2(min)), hi = (int)Math.Ceiling(Math.Log2(max));
            int step = 1;
            while ((hi - lo) / step > 10) step++;
            for (int e = lo; e <= hi; e += step) ticks.Add(Math.Pow(2, e));
        }
        else
        {
            int lo = (int)Math.Floor(Math.Log10(min)), hi = (int)Math.Ceiling(Math.Log10(max));
            int step = Math.Max(1, (hi - lo + 9) / 10);
            foreach (double[] mult in new double[][] { [1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9] })
            {
                ticks.Clear();
                for (int e = lo; e <= hi; e += step)
                    foreach (double m in mult) ticks.Add(m * Math.Pow(10, e));
                if (ticks.Count(t => t >= min / 1.05 && t <= max * 1.05) >= 3) break;
            }
            if (ticks.Count(t => t >= min / 1.05 && t <= max * 1.05) < 3)
            {
                // Less than a decade wide: evenly spaced round values.
                double span = max - min, stepV = Math.Pow(10, Math.Floor(Math.Log10(span / 4)));
                if (span / stepV > 8) stepV *= 2;
                if (span / stepV > 8) stepV *= 2.5;
                ticks.Clear();
                for (double t = Math.Floor(min / stepV) * stepV; t <= max + stepV; t += stepV) if (t > 0) ticks.Add(t);
            }
        }
        foreach (double t in ticks)
            gen.Add((Math.Log10(t), sizes ? Bytes(t) : Number(t), true));
        if (!sizes)
        {
            int lo = (int)Math.Floor(Math.Log10(min)), hi = (int)Math.Ceiling(Math.Log10(max));
            for (int e = lo; e <= hi; e++)
                for (int m = 2; m <= 9; m++) gen.Add((Math.Log10(m * Math.Pow(10, e)), "", false));
        }
        return gen;
    }

    /// <summary>Axis limits in log10 space with a little margin.</summary>
    public static (double Lo, double Hi) LogLimits(double min, double max)
    {
        double a = Math.Log10(min), b = Math.Log10(max);
        double pad = Math.Max(0.05, (b - a) * 0.04);
        return (a - pad, b + pad);
    }
}
