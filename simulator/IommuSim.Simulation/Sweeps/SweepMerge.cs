using System.Globalization;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Results;

namespace IommuSim.Simulation.Sweeps;

/// <summary>
/// <c>merge DIR... --out OUT</c>: the shard folders of one sweep (same sweep.json) are joined into
/// OUT, a new folder (or a previous merge of a sweep, which is replaced): every input is checked
/// first (sweep.json identical, every point present in some input, every point's summary.json a
/// JSON object), then the merged folder is built in a temporary sibling and renamed into place.
/// Inputs are only read. sweep.csv and the plots come from the same code path as an unsharded
/// sweep, so the files are identical apart from the wall-clock columns.
/// </summary>
public static class SweepMerge
{
    public sealed record MergeResult(string Target, int Points, int Copied);

    public static MergeResult Merge(IReadOnlyList<string> dirs, string? outDir, Action<string, SweepSpec, SweepTable>? drawResults = null)
    {
        if (dirs.Count == 0) throw new ConfigError("merge error: name at least one sweep folder");
        if (string.IsNullOrEmpty(outDir))
            throw new ConfigError("merge error: --out DIR is required: merge writes a new sweep folder and never writes into one of its inputs");
        string? json = null, first = null;
        var errors = new List<string>();
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(outDir));
        var inputs = dirs.Select(d => Path.TrimEndingDirectorySeparator(Path.GetFullPath(d))).ToList();
        for (int i = 0; i < dirs.Count; i++)
        {
            string d = dirs[i];
            if (OutputGuard.IsSameOrAncestor(target, inputs[i]) || OutputGuard.IsSameOrAncestor(inputs[i], target))
                errors.Add($"merge error: --out {outDir}: is, contains or lies inside the input {d}; merge never writes into its inputs");
            string p = Path.Combine(d, SweepRunner.SweepJson);
            if (!File.Exists(p) || !Directory.Exists(Path.Combine(d, SweepRunner.PointsFolder)))
            {
                errors.Add($"merge error: {d}: not a sweep folder (it needs the {SweepRunner.SweepJson} and {SweepRunner.PointsFolder}/ that iommusim sweep writes)");
                continue;
            }
            string text = File.ReadAllText(p);
            if (json is null) { json = text; first = d; }
            else if (text != json) errors.Add($"merge error: {d}: its {SweepRunner.SweepJson} differs from {first}'s; these are not shards of the same sweep");
        }
        if (errors.Count > 0) throw new ConfigError(errors);
        OutputGuard.CheckTarget(outDir, "--out", OutputGuard.SweepMarker);
        var spec = SweepSpec.Parse(Path.Combine(first!, SweepRunner.SweepJson), json!, resolved: true);
        var points = spec.Points();

        var from = new string?[points.Count];
        var missing = new List<int>();
        foreach (var p in points)
        {
            from[p.Index] = inputs.FirstOrDefault(s => File.Exists(SweepRunner.SummaryPath(s, p.Index)));
            if (from[p.Index] is null) missing.Add(p.Index);
        }
        if (missing.Count > 0)
            throw new ConfigError($"merge error: {missing.Count} of {points.Count} points are in none of the folders: {Ranges(missing)} (run the missing shards, or sweep --resume into one of the folders)");
        foreach (var p in points)
        {
            string summary = SweepRunner.SummaryPath(from[p.Index]!, p.Index);
            if (SummaryProblem(summary) is string why) errors.Add($"merge error: {summary}: {why}");
            if (errors.Count >= 20) break;
        }
        if (errors.Count > 0) throw new ConfigError(errors);

        // Everything checked: build the merged folder beside the target, then rename it into place.
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        OutputGuard.CleanLeftovers(Path.GetDirectoryName(target)!, Path.GetFileName(target));
        string tmp = OutputGuard.TempSibling(target);
        OutputGuard.Track(tmp);
        try
        {
            Directory.CreateDirectory(Path.Combine(tmp, SweepRunner.PointsFolder));
            File.WriteAllText(Path.Combine(tmp, SweepRunner.SweepJson), json!);
            foreach (var p in points)
            {
                string dst = SweepRunner.PointDir(tmp, p.Index);
                Directory.CreateDirectory(dst);
                foreach (var f in Directory.GetFiles(SweepRunner.PointDir(from[p.Index]!, p.Index))) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
            }
            SweepRunner.WriteResults(tmp, spec, points, drawResults);
            RunFolderWriter.Replace(tmp, target);
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
        return new MergeResult(target, points.Count, points.Count);
    }

    /// <summary>Null if the file is a summary.json a run could have written (a JSON object), else why not.</summary>
    private static string? SummaryProblem(string path)
    {
        try
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path));
            return node is System.Text.Json.Nodes.JsonObject ? null : "not a run summary (expected a JSON object)";
        }
        catch (System.Text.Json.JsonException e) { return $"malformed JSON: {e.Message}"; }
        catch (IOException e) { return $"cannot read: {e.Message}"; }
        catch (UnauthorizedAccessException e) { return $"cannot read: {e.Message}"; }
    }

    /// <summary>"1, 3-5, 9" (at most 20 ranges).</summary>
    public static string Ranges(IReadOnlyList<int> sorted)
    {
        var parts = new List<string>();
        for (int i = 0; i < sorted.Count;)
        {
            int j = i;
            while (j + 1 < sorted.Count && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(i == j ? sorted[i].ToString(CultureInfo.InvariantCulture) : $"{sorted[i].ToString(CultureInfo.InvariantCulture)}-{sorted[j].ToString(CultureInfo.InvariantCulture)}");
            i = j + 1;
        }
        return parts.Count > 20 ? string.Join(", ", parts.Take(20)) + ", ..." : string.Join(", ", parts);
    }
}
