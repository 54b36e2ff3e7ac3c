using System.Globalization;
using IommuSim.Cli.Config;
using IommuSim.Cli.Results;

namespace IommuSim.Cli.Sweeps;

/// <summary>
/// <c>merge DIR...</c>: the shard folders of one sweep (same sweep.json) are joined into the target
/// folder (<c>--out</c>, else the first DIR): point folders the target lacks are copied in
/// (atomically), then sweep.csv and the plots are written from the target's points — the same code
/// path as an unsharded sweep, so the files are identical apart from the wall-clock columns.
/// </summary>
public static class SweepMerge
{
    public sealed record MergeResult(string Target, int Points, int Copied);

    public static MergeResult Merge(IReadOnlyList<string> dirs, string? outDir, bool plots = true)
    {
        if (dirs.Count == 0) throw new ConfigError("merge error: name at least one sweep folder");
        string? json = null, first = null;
        var errors = new List<string>();
        foreach (var d in dirs)
        {
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
        var spec = SweepSpec.Parse(Path.Combine(first!, SweepRunner.SweepJson), json!, resolved: true);
        var points = spec.Points();

        string target = Path.GetFullPath(outDir ?? dirs[0]);
        var sources = new List<string> { target };
        sources.AddRange(dirs.Select(Path.GetFullPath).Where(d => d != target));
        var from = new string?[points.Count];
        var missing = new List<int>();
        foreach (var p in points)
        {
            from[p.Index] = sources.FirstOrDefault(s => File.Exists(SweepRunner.SummaryPath(s, p.Index)));
            if (from[p.Index] is null) missing.Add(p.Index);
        }
        if (missing.Count > 0)
            throw new ConfigError($"merge error: {missing.Count} of {points.Count} points are in none of the folders: {Ranges(missing)} (run the missing shards, or sweep --resume into one of the folders)");

        Directory.CreateDirectory(Path.Combine(target, SweepRunner.PointsFolder));
        AtomicFile.WriteAllText(Path.Combine(target, SweepRunner.SweepJson), json!);
        int copied = 0;
        foreach (var p in points)
        {
            if (from[p.Index] == target) continue;
            CopyPointAtomically(SweepRunner.PointDir(from[p.Index]!, p.Index), SweepRunner.PointDir(target, p.Index));
            copied++;
        }
        SweepRunner.WriteResults(target, spec, points, plots);
        return new MergeResult(target, points.Count, copied);
    }

    private static void CopyPointAtomically(string src, string dst)
    {
        string parent = Path.GetDirectoryName(dst)!;
        string tmp = Path.Combine(parent, $".{Path.GetFileName(dst)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(tmp, Path.GetFileName(f)));
            RunFolderWriter.Replace(tmp, dst);
        }
        catch
        {
            try { Directory.Delete(tmp, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
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
