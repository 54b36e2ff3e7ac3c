using System.Diagnostics;
using IommuSim.Simulation.Results;
using IommuSim.Cli.Tests.Sweeps;

namespace IommuSim.Cli.Tests.Safety;

/// <summary>
/// Issue 13, item 1: no input makes a command write or delete outside its own result folder
/// (docs/limits.md). Tests never change the process's current folder (tests run in parallel), so
/// "the current folder" is the test process's own, which every case below must leave untouched.
/// </summary>
public class OutputSafetyTests
{
    private static readonly string Cwd = Directory.GetCurrentDirectory();

    private static string[] CwdListing() => Directory.GetFileSystemEntries(Cwd, "*.dll").Order(StringComparer.Ordinal).ToArray();

    [Theory]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData(".hidden")]
    [InlineData("a/b")]
    [InlineData("../escape")]
    [InlineData("")]
    public void A_name_that_is_not_a_plain_folder_name_is_bad_input(string name)
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig(name: name));
        var before = CwdListing();
        var (code, _, err) = h.Run("run", cfg, "--no-plots");
        Assert.Equal(2, code);
        Assert.Contains($"name = {name}:", err, StringComparison.Ordinal);
        Assert.Contains("plain folder name", err, StringComparison.Ordinal);
        Assert.Equal(before, CwdListing());
    }

    [Fact]
    public void A_300_character_name_is_bad_input()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig(name: new string('a', 300)));
        var (code, _, err) = h.Run("run", cfg, "--no-plots", "--out", Path.Combine(h.Dir, "o"));
        Assert.Equal(2, code);
        Assert.Contains($"is 300 characters long; at most {OutputGuard.MaxNameLength}", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("name=..")]
    [InlineData("name=.")]
    public void A_name_set_on_the_command_line_is_checked(string set)
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig());
        var (code, _, err) = h.Run("run", cfg, "--set", set, "--no-plots");
        Assert.Equal(2, code);
        Assert.Contains("plain folder name", err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_name_set_through_the_environment_is_checked()
    {
        // The environment is process-wide, so this runs the CLI as a child process.
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig());
        var (code, _, err) = CliProcess.Run(h.Dir, ["run", cfg, "--no-plots"], ("IOMMUSIM__NAME", ".."));
        Assert.Equal(2, code);
        Assert.Contains("name = ..", err, StringComparison.Ordinal);
        Assert.Equal(["c.json"], Directory.GetFileSystemEntries(h.Dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Out_the_current_folder_or_a_parent_of_it_is_refused()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig());
        var before = CwdListing();
        foreach (string o in new[] { ".", "./", "..", Cwd, Path.GetDirectoryName(Cwd)!, "/" })
        {
            var (code, _, err) = h.Run("run", cfg, "--no-plots", "--out", o);
            Assert.Equal(2, code);
            Assert.Contains($"--out {o}:", err, StringComparison.Ordinal);
        }
        Assert.Equal(before, CwdListing());
    }

    [Fact]
    public void Out_a_repository_root_is_refused_and_left_alone()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig());
        string repo = Path.Combine(h.Dir, "repo");
        Directory.CreateDirectory(Path.Combine(repo, ".git"));
        File.WriteAllText(Path.Combine(repo, "summary.json"), "{}"); // even one that looks like a result
        var (code, _, err) = h.Run("run", cfg, "--no-plots", "--out", repo);
        Assert.Equal(2, code);
        Assert.Contains("is a repository root", err, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(repo, ".git")));
    }

    [Fact]
    public void Out_a_folder_that_is_not_a_previous_result_is_refused_and_left_alone()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig());
        string mine = Path.Combine(h.Dir, "mine");
        Directory.CreateDirectory(mine);
        File.WriteAllText(Path.Combine(mine, "notes.txt"), "precious");
        var (code, _, err) = h.Run("run", cfg, "--no-plots", "--out", mine);
        Assert.Equal(2, code);
        Assert.Contains("is not a previous IommuSim result (it has no summary.json)", err, StringComparison.Ordinal);
        Assert.Equal("precious", File.ReadAllText(Path.Combine(mine, "notes.txt")));
    }

    [Fact]
    public void Out_a_previous_result_or_an_empty_folder_is_replaced()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig(maxRequests: 200));
        string o = Path.Combine(h.Dir, "o");
        Directory.CreateDirectory(o);
        Assert.Equal(0, h.Run("run", cfg, "--no-plots", "--out", o).Code);
        File.WriteAllText(Path.Combine(o, "stale.txt"), "from before");
        Assert.Equal(0, h.Run("run", cfg, "--no-plots", "--out", o + "/").Code);
        Assert.False(File.Exists(Path.Combine(o, "stale.txt")));
        Assert.True(File.Exists(Path.Combine(o, "summary.json")));
        Assert.Equal(["c.json", "o"], Directory.GetFileSystemEntries(h.Dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Output_paths_are_checked_before_simulating()
    {
        using var h = new CliHarness();
        // A run that would take minutes: the checks must fail at once, before it starts.
        string cfg = h.Write("c.json", CliHarness.SmallConfig(maxRequests: 1_000_000_000));
        string file = h.Write("afile", "x");
        var r1 = h.Run("run", cfg, "--no-plots", "--out", file);
        Assert.Equal(2, r1.Code);
        Assert.Contains($"--out {file}: is a file", r1.Err, StringComparison.Ordinal);
        var r2 = h.Run("run", cfg, "--no-plots", "--out", Path.Combine(h.Dir, "o"), "--record-trace", h.Dir);
        Assert.Equal(2, r2.Code);
        Assert.Contains($"--record-trace {h.Dir}: is a folder", r2.Err, StringComparison.Ordinal);
        var r3 = h.Run("run", cfg, "--no-plots", "--out", Path.Combine(h.Dir, "o"), "--record-trace", Path.Combine(h.Dir, "o", "t.csv"));
        Assert.Equal(2, r3.Code);
        Assert.Contains("lies inside the results folder", r3.Err, StringComparison.Ordinal);
        Assert.Equal("x", File.ReadAllText(file));
        Assert.False(Directory.Exists(Path.Combine(h.Dir, "o")));
    }

    [Fact]
    public void A_sweep_named_dotdot_or_sweeping_into_the_current_folder_is_refused()
    {
        using var t = new TempSweep(TempSweep.DefaultSweep.Replace("\"tiny-sweep\"", "\"..\"", StringComparison.Ordinal));
        var before = CwdListing();
        var (code, _, err) = Cli("sweep", t.SweepPath, "--no-plots", "--quiet");
        Assert.Equal(2, code);
        Assert.Contains("name = ..:", err, StringComparison.Ordinal);

        using var t2 = new TempSweep();
        var r = Cli("sweep", t2.SweepPath, "--no-plots", "--quiet", "--out", ".");
        Assert.Equal(2, r.Code);
        Assert.Contains("--out .: is the current folder", r.Err, StringComparison.Ordinal);
        string mine = t2.Sub("mine");
        Directory.CreateDirectory(mine);
        File.WriteAllText(Path.Combine(mine, "notes.txt"), "precious");
        r = Cli("sweep", t2.SweepPath, "--no-plots", "--quiet", "--out", mine);
        Assert.Equal(2, r.Code);
        Assert.Contains("has no sweep.json", r.Err, StringComparison.Ordinal);
        Assert.Equal(["notes.txt"], Directory.GetFileSystemEntries(mine).Select(Path.GetFileName));
        Assert.Equal(before, CwdListing());
    }

    [Fact]
    public void Merge_needs_out_never_writes_into_an_input_and_checks_every_point_first()
    {
        using var t = new TempSweep();
        foreach (var i in new[] { 0, 1 })
            Assert.Equal(0, Cli("sweep", t.SweepPath, "--shard", $"{i}/2", "--jobs", "1", "--out", t.Sub($"s{i}"), "--quiet", "--no-plots").Code);
        string Snapshot(string d) => string.Join("\n", Directory.GetFileSystemEntries(d, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => File.Exists(f) ? f + ":" + File.ReadAllText(f).Length : f));
        string s0 = Snapshot(t.Sub("s0")), s1 = Snapshot(t.Sub("s1"));

        var r = Cli("merge", t.Sub("s0"), t.Sub("s1"));
        Assert.Equal(2, r.Code);
        Assert.Contains("--out DIR is required", r.Err, StringComparison.Ordinal);
        r = Cli("merge", t.Sub("s0"), t.Sub("s1"), "--out", t.Sub("s1"));
        Assert.Equal(2, r.Code);
        Assert.Contains("merge never writes into its inputs", r.Err, StringComparison.Ordinal);
        r = Cli("merge", t.Sub("s0"), t.Sub("s1"), "--out", Path.Combine(t.Sub("s0"), "points", "m"));
        Assert.Equal(2, r.Code);
        r = Cli("merge", t.Sub("s0"), t.Sub("s1"), "--out", t.SweepPath);
        Assert.Equal(2, r.Code);
        Assert.Contains("is a file", r.Err, StringComparison.Ordinal);

        // A point whose summary.json is not an object: an error before anything is written.
        string bad = Path.Combine(t.Sub("s1"), "points", "0001", "summary.json");
        string good = File.ReadAllText(bad);
        File.WriteAllText(bad, "[1, 2]");
        r = Cli("merge", t.Sub("s0"), t.Sub("s1"), "--out", t.Sub("m"), "--no-plots");
        Assert.Equal(2, r.Code);
        Assert.Contains($"{bad}: not a run summary", r.Err, StringComparison.Ordinal);
        Assert.False(Path.Exists(t.Sub("m")));
        Assert.DoesNotContain(Names(t.Dir), n => n.StartsWith(".m.tmp-", StringComparison.Ordinal));
        File.WriteAllText(bad, good);

        r = Cli("merge", t.Sub("s0"), t.Sub("s1"), "--out", t.Sub("m"), "--no-plots");
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal(12, Directory.GetDirectories(Path.Combine(t.Sub("m"), "points")).Length);
        Assert.Equal(s0, Snapshot(t.Sub("s0")));
        Assert.Equal(s1, Snapshot(t.Sub("s1")));
        // A previous merge is replaced.
        Assert.Equal(0, Cli("merge", t.Sub("s0"), t.Sub("s1"), "--out", t.Sub("m"), "--no-plots").Code);
    }

    [Fact]
    public void Leftovers_of_dead_processes_are_removed_by_the_next_run_and_a_stranded_old_result_is_restored()
    {
        using var h = new CliHarness();
        string cfg = h.Write("c.json", CliHarness.SmallConfig(maxRequests: 200));
        int dead = DeadPid();
        string guid = Guid.NewGuid().ToString("N");
        string tmp = Path.Combine(h.Dir, $".o.tmp-{dead}-{guid}");
        Directory.CreateDirectory(tmp);
        File.WriteAllText(Path.Combine(tmp, "summary.json"), "{}");
        string otherName = Path.Combine(h.Dir, $".other.tmp-{dead}-{guid}"); // another result's: not ours to clean
        Directory.CreateDirectory(otherName);
        string live = Path.Combine(h.Dir, $".o.tmp-{Environment.ProcessId}-{guid}"); // a live process's: kept
        Directory.CreateDirectory(live);
        Assert.Equal(0, h.Run("run", cfg, "--no-plots", "--out", Path.Combine(h.Dir, "o")).Code);
        Assert.False(Directory.Exists(tmp));
        Assert.True(Directory.Exists(otherName));
        Assert.True(Directory.Exists(live));

        // Killed between "move the old result away" and "move the new one in": the old one comes back.
        string stranded = Path.Combine(h.Dir, $"r.old-{dead}-{guid}");
        Directory.CreateDirectory(stranded);
        File.WriteAllText(Path.Combine(stranded, "summary.json"), "{\"old\": 1}");
        Assert.Equal(1, OutputGuard.CleanLeftovers(h.Dir, "r"));
        Assert.Equal("{\"old\": 1}", File.ReadAllText(Path.Combine(h.Dir, "r", "summary.json")));
    }

    [Fact]
    public void An_interrupted_run_removes_its_temporaries()
    {
        using var h = new CliHarness();
        // Long enough to be interrupted; --record-trace keeps a temporary file open for the whole run.
        string cfg = h.Write("c.json", CliHarness.SmallConfig(maxRequests: 2_000_000_000));
        string trace = Path.Combine(h.Dir, "t.csv");
        using var p = CliProcess.Start(h.Dir, ["run", cfg, "--no-plots", "--quiet", "--out", Path.Combine(h.Dir, "o"), "--record-trace", trace]);
        try
        {
            var sw = Stopwatch.StartNew();
            while (!Names(h.Dir).Any(n => n.StartsWith(".t.csv.tmp-", StringComparison.Ordinal)))
            {
                if (p.HasExited) Assert.Fail("the run ended before it could be interrupted: " + p.StandardError.ReadToEnd());
                Assert.True(sw.Elapsed < TimeSpan.FromMinutes(2), "the run never started writing its trace");
                Thread.Sleep(20);
            }
            using (var kill = Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
            Assert.True(p.WaitForExit(TimeSpan.FromMinutes(1)));
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
        Assert.NotEqual(0, p.ExitCode);
        Assert.Equal(["c.json"], Names(h.Dir));
        Assert.False(File.Exists(trace));
        Assert.False(Directory.Exists(Path.Combine(h.Dir, "o")));
    }

    private static List<string> Names(string dir) => Directory.EnumerateFileSystemEntries(dir).Select(e => Path.GetFileName(e)!).Order(StringComparer.Ordinal).ToList();

    private static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = Commands.CliApp.Run(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }
}

/// <summary>The CLI as a child process (for environment variables and signals, which are process-wide).</summary>
internal static class CliProcess
{
    public static Process Start(string workDir, string[] args, params (string Key, string Value)[] env)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "iommusim.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        return Process.Start(psi)!;
    }

    public static (int Code, string Out, string Err) Run(string workDir, string[] args, params (string Key, string Value)[] env)
    {
        using var p = Start(workDir, args, env);
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, so.Result, se.Result);
    }
}
