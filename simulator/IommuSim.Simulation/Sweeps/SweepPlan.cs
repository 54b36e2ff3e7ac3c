using System.Globalization;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Running;

namespace IommuSim.Simulation.Sweeps;

/// <summary>
/// A sweep checked as a whole before any point runs: the sweep file, the base config, every
/// point's config (base + vary overrides + seed, through <see cref="ConfigLoader"/>), and every
/// plot column. Any problem is a <see cref="ConfigError"/> (exit 2) naming the vary key or plot key.
/// </summary>
public sealed class SweepPlan
{
    public required string SweepPath { get; init; }
    public required SweepSpec Spec { get; init; }
    public required string BasePath { get; init; }
    public required IReadOnlyList<SweepPoint> Points { get; init; }
    public required bool UseEnvironment { get; init; }

    /// <summary>
    /// The loaded config of a point. The check loaded every vary combination once (with the first
    /// seed; the seed cannot make a config invalid), so this load, done on the worker thread that
    /// runs the point, cannot fail with a config error; it gives the point's own resolved JSON and hash.
    /// </summary>
    public LoadedConfig ConfigFor(SweepPoint p) => ConfigLoader.Load(BasePath, null, p.Seed, p.Overrides(), UseEnvironment);

    /// <param name="jobs">Threads used to load the points' configs (they are independent; errors are reported in point order).</param>
    public static SweepPlan Prepare(string sweepPath, bool useEnvironment = true, int jobs = 1)
    {
        var spec = SweepSpec.Load(sweepPath);
        string basePath = SweepSpec.ResolveBase(sweepPath, spec.Base);
        if (!File.Exists(basePath))
            throw new ConfigError($"sweep error: {sweepPath}: base = {spec.Base}: file not found (looked next to the sweep file and in the current folder)");
        var baseConfig = ConfigLoader.Load(basePath, useEnvironment: useEnvironment);
        if (spec.Seeds.Count == 0) spec = spec.WithSeeds([baseConfig.Config.Simulation.Seed]);

        var errors = new List<string>();
        var varyKeys = spec.VaryKeys.ToList();
        foreach (var k in varyKeys)
            if (string.Equals(k, "simulation:seed", StringComparison.OrdinalIgnoreCase))
                errors.Add($"sweep error: {sweepPath}: vary:{k}: use the 'seeds' list to vary the seed");

        var points = spec.Points();
        // One point per vary combination (the first seed of each); seeds only set simulation:seed.
        var combos = points.Where(p => p.Index % spec.Seeds.Count == 0).ToList();
        var configs = new LoadedConfig?[combos.Count];
        var failures = new ConfigError?[combos.Count];
        Parallel.For(0, combos.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, jobs) }, i =>
        {
            try { configs[i] = ConfigLoader.Load(basePath, null, combos[i].Seed, combos[i].Overrides(), useEnvironment); }
            catch (ConfigError e) { failures[i] = e; }
        });
        var reported = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < combos.Count; i++)
        {
            var p = combos[i];
            if (failures[i] is not ConfigError e) continue;
            foreach (string m in e.Messages)
            {
                var (dedupeKey, msg) = DescribePointError(sweepPath, p, m);
                if (reported.Add(dedupeKey)) errors.Add(msg);
            }
            if (reported.Count > 50) break;
        }
        if (errors.Count == 0)
            foreach (var cfg in configs) SimulationRunner.Preflight(cfg!);

        var known = spec.Plots.Count > 0 ? SummaryKeys.Known(baseConfig) : new HashSet<string>(SummaryKeys.Contract, StringComparer.Ordinal);
        for (int i = 0; i < spec.Plots.Count; i++)
        {
            var pl = spec.Plots[i];
            CheckColumn(pl.X, $"plots:{i}:x", allowVary: true);
            CheckColumn(pl.Y, $"plots:{i}:y", allowVary: false);
            for (int s = 0; s < pl.Series.Count; s++) CheckColumn(pl.Series[s], $"plots:{i}:series", allowVary: true);
            if (pl.Series.Contains(pl.X, StringComparer.Ordinal)) errors.Add($"sweep error: {sweepPath}: plots:{i}:series = {pl.X}: the same key as x");
        }
        if (errors.Count > 0) throw new ConfigError(errors);
        return new SweepPlan { SweepPath = sweepPath, Spec = spec, BasePath = basePath, Points = points, UseEnvironment = useEnvironment };

        void CheckColumn(string key, string where, bool allowVary)
        {
            if (allowVary && (varyKeys.Contains(key, StringComparer.Ordinal) || key == SweepTable.SeedColumn)) return;
            if (known.Contains(key))
            {
                if (!allowVary && SummaryKeys.TextKeys.Contains(key)) errors.Add($"sweep error: {sweepPath}: {where} = {key}: not a number; y must be a numeric summary key");
                return;
            }
            string hint = allowVary
                ? $"a vary key ({(varyKeys.Count == 0 ? "none" : string.Join(", ", varyKeys))}), seed, or a summary key"
                : "a numeric summary key";
            var near = known.Order(StringComparer.Ordinal).Concat(varyKeys).FirstOrDefault(k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase)
                                                                            || string.Equals(k.Replace(':', '.'), key.Replace(':', '.'), StringComparison.OrdinalIgnoreCase));
            errors.Add($"sweep error: {sweepPath}: {where} = {key}: unknown column (allowed: {hint} such as iotlb.missRate, latencyNs.dma.p99, throughput.gbps; see spec/results.md){(near is null ? "" : $"; did you mean {near}?")}");
        }
    }

    /// <summary>The message naming the vary key the config error is about (reported once per key and message).</summary>
    private static (string DedupeKey, string Message) DescribePointError(string sweepPath, SweepPoint p, string message)
    {
        foreach (var kv in p.Values)
            if (message.Contains(kv.Key, StringComparison.OrdinalIgnoreCase))
                return (kv.Key + "\u001f" + message, $"sweep error: {sweepPath}: vary:{kv.Key} = {kv.Value}: {message}");
        string where = string.Join(", ", p.Values.Select(v => $"{v.Key}={v.Value}").Append($"seed={p.Seed.ToString(CultureInfo.InvariantCulture)}"));
        return (message, $"sweep error: {sweepPath}: point {p.Index} ({where}): {message}");
    }
}
