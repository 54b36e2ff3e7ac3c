using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using IommuSim.Simulation.Config;

namespace IommuSim.Simulation.Sweeps;

/// <summary>One plot a sweep file asks for (config.md, Sweeps). <see cref="Series"/> may name several keys.</summary>
public sealed record PlotSpec(string X, string Y, IReadOnlyList<string> Series, bool LogX, bool LogY, string? Title);

/// <summary>One point of a sweep: its stable index, its seed and the value of each vary key (as written in the sweep file).</summary>
public sealed record SweepPoint(int Index, ulong Seed, IReadOnlyList<KeyValuePair<string, string>> Values)
{
    public string FolderName => FolderOf(Index);

    public static string FolderOf(int index) => index.ToString("D4", CultureInfo.InvariantCulture);

    /// <summary>The overrides that turn the base config into this point (config keys in <c>:</c> syntax).</summary>
    public Dictionary<string, string?> Overrides()
    {
        var d = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var kv in Values) d[kv.Key] = kv.Value;
        return d;
    }
}

/// <summary>
/// A parsed sweep file. Points are the cartesian product of the vary lists × seeds, numbered
/// row-major in file order: the first vary key changes slowest, the seed fastest. So with keys
/// A (a values), B (b values) and s seeds, point index = ((iA · b) + iB) · s + iSeed.
/// </summary>
public sealed partial class SweepSpec
{
    public required string Name { get; init; }
    /// <summary>The base config path as written in the sweep file.</summary>
    public required string Base { get; init; }
    public required IReadOnlyList<KeyValuePair<string, IReadOnlyList<string>>> Vary { get; init; }
    public required IReadOnlyList<ulong> Seeds { get; init; }
    public required IReadOnlyList<PlotSpec> Plots { get; init; }

    public IEnumerable<string> VaryKeys => Vary.Select(v => v.Key);

    /// <summary>Most points one sweep may have: every point's config is loaded and checked before any runs (about 1 ms each).</summary>
    public const int MaxPoints = 100_000;

    public int PointCount => Vary.Aggregate(1, (n, v) => checked(n * v.Value.Count)) * Seeds.Count;

    private static readonly string[] TopKeys = ["name", "base", "vary", "seeds", "plots"];
    private static readonly string[] PlotKeys = ["x", "y", "series", "logX", "logY", "title"];

    /// <summary>Every point in index order.</summary>
    public IReadOnlyList<SweepPoint> Points()
    {
        var points = new List<SweepPoint>(PointCount);
        var idx = new int[Vary.Count];
        int index = 0;
        while (true)
        {
            var values = Vary.Select((v, i) => new KeyValuePair<string, string>(v.Key, v.Value[idx[i]])).ToList();
            foreach (ulong seed in Seeds) points.Add(new SweepPoint(index++, seed, values));
            int k = Vary.Count - 1;
            while (k >= 0 && ++idx[k] == Vary[k].Value.Count) { idx[k] = 0; k--; }
            if (k < 0) break;
        }
        return points;
    }

    /// <summary>Where the base config is: relative to the sweep file's folder if it exists there, else to the current folder.</summary>
    public static string ResolveBase(string sweepPath, string basePath)
        => ConfigValidator.ResolvePath(Path.GetDirectoryName(Path.GetFullPath(sweepPath)) ?? ".", basePath);

    // ---- parsing ------------------------------------------------------------------------

    /// <summary>Reads and checks the sweep file's own structure (not the configs of its points). Problems → <see cref="ConfigError"/>.</summary>
    public static SweepSpec Load(string path)
    {
        if (!File.Exists(path)) throw new ConfigError($"sweep error: {path}: file not found");
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ConfigError($"sweep error: {path}: cannot read: {e.Message}"); }
        return Parse(path, text, resolved: false);
    }

    /// <summary>Parses sweep JSON. <paramref name="resolved"/>: a sweep.json written by <see cref="ToJson"/> (seeds always present).</summary>
    public static SweepSpec Parse(string path, string text, bool resolved)
    {
        JsonNode? root;
        try
        {
            // Duplicate keys are an error (the second would silently win, or JsonObject would throw later).
            root = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            throw new ConfigError($"sweep error: {path}:{(e.LineNumber ?? 0) + 1}: malformed JSON: {CutPath(e.Message)}");
        }
        var errors = new List<string>();
        void Err(string m) => errors.Add($"sweep error: {path}: {m}");
        if (root is not JsonObject obj) throw new ConfigError($"sweep error: {path}: expected a JSON object with name, base, vary, seeds, plots");

        foreach (var kv in obj)
            if (!TopKeys.Contains(kv.Key) && !(resolved && kv.Key is "points" or "pointCount" or "order"))
                Err($"{kv.Key}: unknown key (allowed: {string.Join(", ", TopKeys)})");

        string name = obj["name"] is JsonValue nv && nv.TryGetValue(out string? n) ? n : "";
        if (Results.OutputGuard.NameProblem(name) is string nameProblem) Err($"name = {name}: {nameProblem}");
        string basePath = obj["base"] is JsonValue bv && bv.TryGetValue(out string? b) ? b : "";
        if (basePath.Length == 0) Err("base: the path of the base config is required (relative to the sweep file or the current folder)");

        var vary = new List<KeyValuePair<string, IReadOnlyList<string>>>();
        if (obj["vary"] is JsonObject vo)
        {
            foreach (var kv in vo)
            {
                string key = kv.Key;
                if (key.Length == 0 || key.Contains('=') || key.Trim() != key) { Err($"vary: '{key}' is not a config key (use ':' between levels, for example iommu:iotlb:sets)"); continue; }
                if (key.Contains('.') && !key.Contains(':')) { Err($"vary:{key}: config keys use ':' between levels (for example {key.Replace('.', ':')})"); continue; }
                if (vary.Any(v => string.Equals(v.Key, key, StringComparison.OrdinalIgnoreCase))) { Err($"vary:{key}: the key is listed twice"); continue; }
                if (kv.Value is not JsonArray arr) { Err($"vary:{key}: expected a list of values"); continue; }
                if (arr.Count == 0) { Err($"vary:{key}: empty list (give at least one value)"); continue; }
                var values = new List<string>();
                foreach (var el in arr)
                {
                    string? s = Scalar(el);
                    if (s is null) { Err($"vary:{key}: {el?.ToJsonString() ?? "null"}: values must be numbers, strings or true/false"); continue; }
                    if (values.Contains(s, StringComparer.Ordinal)) { Err($"vary:{key}: value {s} is listed twice"); continue; }
                    values.Add(s);
                }
                vary.Add(new(key, values));
            }
        }
        else if (obj["vary"] is not null) Err("vary: expected an object mapping config keys to lists of values");

        var seeds = new List<ulong>();
        if (obj["seeds"] is JsonArray sa)
        {
            if (sa.Count == 0) Err("seeds: empty list (leave the key out to use the base config's seed)");
            foreach (var el in sa)
            {
                if (el is JsonValue v && v.GetValueKind() == JsonValueKind.Number && ulong.TryParse(v.ToJsonString(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong sd))
                {
                    if (seeds.Contains(sd)) Err($"seeds: {sd} is listed twice");
                    else seeds.Add(sd);
                }
                else Err($"seeds: {el?.ToJsonString() ?? "null"}: expected a non-negative integer");
            }
        }
        else if (obj["seeds"] is not null) Err("seeds: expected a list of non-negative integers");
        else if (resolved) Err("seeds: missing");

        var plots = new List<PlotSpec>();
        if (obj["plots"] is JsonArray pa)
        {
            for (int i = 0; i < pa.Count; i++)
            {
                if (pa[i] is not JsonObject po) { Err($"plots:{i}: expected an object {{x, y, series?, logX?, logY?, title?}}"); continue; }
                foreach (var kv in po)
                    if (!PlotKeys.Contains(kv.Key)) Err($"plots:{i}:{kv.Key}: unknown key (allowed: {string.Join(", ", PlotKeys)})");
                string? x = po["x"] is JsonValue xv && xv.TryGetValue(out string? xs) ? xs : null;
                string? y = po["y"] is JsonValue yv && yv.TryGetValue(out string? ys) ? ys : null;
                if (string.IsNullOrEmpty(x)) Err($"plots:{i}:x: required (a vary key or a summary key)");
                if (string.IsNullOrEmpty(y)) Err($"plots:{i}:y: required (a summary key, for example iotlb.missRate)");
                var series = new List<string>();
                switch (po["series"])
                {
                    case null: break;
                    case JsonValue sv when sv.TryGetValue(out string? s1) && s1.Length > 0: series.Add(s1); break;
                    case JsonArray sarr:
                        foreach (var el in sarr)
                            if (el is JsonValue ev && ev.TryGetValue(out string? s2) && s2.Length > 0) series.Add(s2);
                            else Err($"plots:{i}:series: expected a key or a list of keys");
                        break;
                    default: Err($"plots:{i}:series: expected a key or a list of keys"); break;
                }
                bool Flag(string k)
                {
                    if (po[k] is null) return false;
                    if (po[k] is JsonValue fv && fv.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return fv.GetValue<bool>();
                    Err($"plots:{i}:{k}: expected true or false");
                    return false;
                }
                string? title = po["title"] is JsonValue tv && tv.TryGetValue(out string? ts) ? ts : null;
                plots.Add(new PlotSpec(x ?? "", y ?? "", series, Flag("logX"), Flag("logY"), title));
            }
        }
        else if (obj["plots"] is not null) Err("plots: expected a list of {x, y, series?, logX?, logY?}");

        if (errors.Count > 0) throw new ConfigError(errors);
        var spec = new SweepSpec { Name = name, Base = basePath, Vary = vary, Seeds = seeds, Plots = plots };
        long count = vary.Aggregate(1L, (n, v) => Math.Min(n * v.Value.Count, MaxPoints + 1L)) * Math.Max(1, seeds.Count);
        if (count > MaxPoints) throw new ConfigError($"sweep error: {path}: vary × seeds gives more than {MaxPoints} points; split the sweep (each point is checked and run as its own simulation; docs/limits.md)");
        return spec;
    }

    private static string? Scalar(JsonNode? el)
    {
        if (el is not JsonValue v) return null;
        return v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>(),
            JsonValueKind.Number => v.ToJsonString(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => null,
        };
    }

    private static string CutPath(string msg)
    {
        int cut = msg.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? msg[..cut] : msg;
    }

    /// <summary>With the seed list filled in (the base config's seed when the file gave none).</summary>
    public SweepSpec WithSeeds(IReadOnlyList<ulong> seeds) => new() { Name = Name, Base = Base, Vary = Vary, Seeds = seeds, Plots = Plots };

    /// <summary>The resolved sweep (sweep.json): the file's content with seeds filled in, the point
    /// count and the numbering rule. Identical for every shard of a sweep, so merge can compare them.</summary>
    public string ToJson()
    {
        var vary = new JsonObject();
        foreach (var kv in Vary) vary[kv.Key] = new JsonArray(kv.Value.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());
        var plots = new JsonArray();
        foreach (var p in Plots)
        {
            var o = new JsonObject { ["x"] = p.X, ["y"] = p.Y };
            if (p.Series.Count > 0) o["series"] = new JsonArray(p.Series.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray());
            o["logX"] = p.LogX;
            o["logY"] = p.LogY;
            if (p.Title is not null) o["title"] = p.Title;
            plots.Add(o);
        }
        var root = new JsonObject
        {
            ["name"] = Name,
            ["base"] = Base,
            ["vary"] = vary,
            ["seeds"] = new JsonArray(Seeds.Select(s => (JsonNode?)JsonValue.Create(s)).ToArray()),
            ["plots"] = plots,
            ["pointCount"] = PointCount,
            ["order"] = "row-major over vary keys in file order, seed fastest: index = ((i1*n2 + i2)*n3 + ...)*seeds + iSeed",
        };
        var sb = new StringBuilder(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        return sb.Append('\n').ToString();
    }
}
