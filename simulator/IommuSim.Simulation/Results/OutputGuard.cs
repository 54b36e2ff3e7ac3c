using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using IommuSim.Simulation.Config;

namespace IommuSim.Simulation.Results;

/// <summary>
/// What a command may write (docs/limits.md): a result name is a plain file name, and a results
/// folder is replaced only when it is new, empty, or a previous IommuSim result of the same kind
/// (it holds the marker file: summary.json for a run, sweep.json for a sweep). Never the current
/// folder, one of its parents, a file-system root or a repository root.
/// </summary>
public static partial class OutputGuard
{
    /// <summary>Longest result name: the temporary sibling ".NAME.tmp-PID-GUID" must stay well under NAME_MAX (255).</summary>
    public const int MaxNameLength = 100;

    public const string RunMarker = "summary.json";
    public const string SweepMarker = "sweep.json";

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex PlainName();

    /// <summary>Null if <paramref name="name"/> can name a results folder, else why not.</summary>
    public static string? NameProblem(string name)
    {
        if (name.Length > MaxNameLength) return $"is {name.Length} characters long; at most {MaxNameLength} (it names the results folder)";
        if (!PlainName().IsMatch(name))
            return "must be a plain folder name: letters, digits, '.', '_' and '-', starting with a letter or digit (so not '.', '..' or a path; it names the results folder)";
        return null;
    }

    /// <summary>
    /// Checks, before any work, that <paramref name="dir"/> may be (re)placed by a result whose
    /// folder holds <paramref name="marker"/>. <paramref name="what"/> names the option or key the
    /// path came from, as the user wrote it (for example "--out" or "name").
    /// </summary>
    public static void CheckTarget(string dir, string what, string marker)
    {
        string full = Normalize(Path.GetFullPath(dir));
        string real = Directory.Exists(full) ? Normalize(Directory.ResolveLinkTarget(full, true)?.FullName ?? full) : full;
        string said = $"{what} {dir}";
        if (File.Exists(full)) throw new ConfigError($"output error: {said}: is a file; give a folder");
        string cwd = Normalize(Directory.GetCurrentDirectory());
        foreach (string p in new[] { full, real })
        {
            if (Path.GetPathRoot(p) == p || p == Normalize(Path.GetPathRoot(p) ?? "/"))
                throw new ConfigError($"output error: {said}: is a file-system root; give a results folder");
            if (IsSameOrAncestor(p, cwd))
                throw new ConfigError($"output error: {said}: is the current folder or one of its parents ({p}); results go into a folder of their own");
        }
        if (!Directory.Exists(full)) return;
        if (Path.Exists(Path.Combine(full, ".git")) || File.Exists(Path.Combine(full, "IommuSim.sln")))
            throw new ConfigError($"output error: {said}: is a repository root; results go into a folder of their own");
        if (Directory.EnumerateFileSystemEntries(full).Any() && !File.Exists(Path.Combine(full, marker)))
            throw new ConfigError($"output error: {said}: exists and is not a previous IommuSim result (it has no {marker}); refusing to replace it. Choose a new folder, or remove it yourself");
    }

    /// <summary>True if <paramref name="a"/> is <paramref name="b"/> or one of its parents (full, normalized paths).</summary>
    public static bool IsSameOrAncestor(string a, string b)
    {
        var cmp = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        a = Normalize(a);
        b = Normalize(b);
        return string.Equals(a, b, cmp) || b.StartsWith(a.EndsWith(Path.DirectorySeparatorChar) ? a : a + Path.DirectorySeparatorChar, cmp);
    }

    private static string Normalize(string p)
    {
        string root = Path.GetPathRoot(p) ?? "";
        return p.Length > root.Length ? p.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) : p;
    }

    // ---- temporaries: names, leftovers, interrupts ----------------------------------------

    /// <summary>The temporary sibling a result is written into before it is renamed into place.</summary>
    /// <param name="keepExtension">For files whose writer infers the format from the extension (PNG).</param>
    public static string TempSibling(string final, bool keepExtension = false)
    {
        string parent = Path.GetDirectoryName(final)!;
        string id = $"{Environment.ProcessId}-{Guid.NewGuid():N}";
        return keepExtension
            ? Path.Combine(parent, $".{Path.GetFileNameWithoutExtension(final)}.tmp-{id}{Path.GetExtension(final)}")
            : Path.Combine(parent, $".{Path.GetFileName(final)}.tmp-{id}");
    }

    /// <summary>The name a replaced result is moved to until its successor is in place.</summary>
    public static string OldSibling(string final) => final + $".old-{Environment.ProcessId}-{Guid.NewGuid():N}";

    [GeneratedRegex(@"^\.(?<name>.+)\.tmp-(?<pid>\d+)-[0-9a-f]{32}(\.[A-Za-z0-9]+)?$")]
    private static partial Regex TempName();

    [GeneratedRegex(@"^(?<name>.+)\.old-(?<pid>\d+)-[0-9a-f]{32}$")]
    private static partial Regex OldName();

    /// <summary>
    /// Removes what an interrupted or killed IommuSim process left in <paramref name="parent"/>:
    /// temporary folders and files of processes that no longer run. A replaced result whose
    /// successor never arrived (killed between the two renames) is put back instead of deleted.
    /// Only names of the forms IommuSim itself creates are touched.
    /// </summary>
    /// <param name="name">Only the leftovers of this result (null: of any).</param>
    public static int CleanLeftovers(string parent, string? name = null)
    {
        if (!Directory.Exists(parent)) return 0;
        int removed = 0;
        var entries = name is null
            ? Directory.EnumerateFileSystemEntries(parent).ToList()
            : Directory.EnumerateFileSystemEntries(parent, $".{name}.tmp-*").Concat(Directory.EnumerateFileSystemEntries(parent, $"{name}.old-*")).ToList();
        foreach (string entry in entries)
        {
            string file = Path.GetFileName(entry);
            var m = TempName().Match(file);
            bool old = false;
            if (!m.Success) { m = OldName().Match(file); old = m.Success; }
            if (!m.Success || (name is not null && m.Groups["name"].Value != name) || !int.TryParse(m.Groups["pid"].Value, out int pid) || IsRunning(pid)) continue;
            try
            {
                string final = Path.Combine(parent, m.Groups["name"].Value);
                if (old && !Path.Exists(final)) Directory.Move(entry, final);
                else Delete(entry);
                removed++;
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    internal static void Delete(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, true);
            else if (File.Exists(path)) File.Delete(path);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static readonly object Gate = new();
    private static readonly HashSet<string> Live = new(StringComparer.Ordinal);
    private static readonly List<PosixSignalRegistration> Signals = [];
    private static bool _exiting;

    /// <summary>
    /// Renames and deletions of results run under this lock, and an interrupt takes it before it
    /// removes the temporaries: so an interrupt never sees a result half replaced.
    /// </summary>
    public static void Critical(Action body)
    {
        lock (Gate) body();
    }

    /// <summary>A temporary file or folder to remove if the process is interrupted before <see cref="Forget"/>.</summary>
    public static void Track(string path)
    {
        lock (Gate)
        {
            if (_exiting) throw new OperationCanceledException("interrupted");
            Live.Add(path);
        }
    }

    public static void Forget(string path)
    {
        lock (Gate) Live.Remove(path);
    }

    /// <summary>Removes every tracked temporary (what SIGINT/SIGTERM do before the process ends).</summary>
    public static int RemoveTracked(bool exiting = false)
    {
        lock (Gate)
        {
            _exiting |= exiting;
            int n = Live.Count;
            foreach (string p in Live) Delete(p);
            Live.Clear();
            return n;
        }
    }

    /// <summary>Ctrl-C, SIGTERM and SIGHUP remove the temporaries, then end the process as the signal would.</summary>
    public static void InstallInterruptHandlers()
    {
        lock (Gate)
        {
            if (Signals.Count > 0) return;
            foreach (var s in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP })
            {
                try { Signals.Add(PosixSignalRegistration.Create(s, _ => RemoveTracked(exiting: true))); }
                catch (PlatformNotSupportedException) { }
            }
        }
    }
}
