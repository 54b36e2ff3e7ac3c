using System.Globalization;
using IommuSim.Workloads;
using IommuSim.Workloads.Trace;

namespace IommuSim.Cli.Commands;

/// <summary>
/// <c>--record-trace</c>: writes every request as it is issued, with its issue time, to a trace
/// that replays the same requests at the same times. Written to a temporary file and renamed
/// when the run completes.
/// </summary>
internal sealed class TraceRecorder : IRequestObserver, IDisposable
{
    private readonly string _path;
    private readonly string _tmp;
    private readonly StreamWriter _w;
    private bool _done;

    /// <summary>Before anything runs: the trace path must be a file (new or replaced) outside the results folder the run replaces.</summary>
    public static void CheckPath(string path, string resultsDir)
    {
        string full = Path.GetFullPath(path);
        if (path.Length == 0 || Directory.Exists(full) || path.EndsWith('/') || path.EndsWith(Path.DirectorySeparatorChar))
            throw new Simulation.Config.ConfigError($"output error: --record-trace {path}: is a folder; give a file name");
        if (Simulation.Results.OutputGuard.IsSameOrAncestor(Path.TrimEndingDirectorySeparator(Path.GetFullPath(resultsDir)), full))
            throw new Simulation.Config.ConfigError($"output error: --record-trace {path}: lies inside the results folder {resultsDir}, which the run replaces; write the trace elsewhere");
        for (string? d = Path.GetDirectoryName(full); d is not null; d = Path.GetDirectoryName(d))
            if (File.Exists(d)) throw new Simulation.Config.ConfigError($"output error: --record-trace {path}: {d} is a file, not a folder");
    }

    public TraceRecorder(string path)
    {
        _path = path;
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        _tmp = Simulation.Results.OutputGuard.TempSibling(Path.GetFullPath(path));
        Simulation.Results.OutputGuard.Track(_tmp);
        _w = new StreamWriter(_tmp) { NewLine = "\n" };
        _w.WriteLine(TraceReader.Header);
    }

    public void OnIssued(long timePs, string device, uint? pasid, ulong iova, int bytes, bool write)
    {
        // ns with ps decimals, so a replay issues at exactly the recorded times.
        _w.Write((timePs / 1000).ToString(CultureInfo.InvariantCulture));
        if (timePs % 1000 != 0) _w.Write("." + (timePs % 1000).ToString("000", CultureInfo.InvariantCulture).TrimEnd('0'));
        _w.Write(',');
        _w.Write(device);
        _w.Write(',');
        if (pasid is uint p) _w.Write(p.ToString(CultureInfo.InvariantCulture));
        _w.Write(",0x");
        _w.Write(iova.ToString("x", CultureInfo.InvariantCulture));
        _w.Write(',');
        _w.Write(bytes.ToString(CultureInfo.InvariantCulture));
        _w.Write(write ? ",W\n" : ",R\n");
    }

    public void Complete()
    {
        _w.Flush();
        _w.Dispose();
        Simulation.Results.OutputGuard.Critical(() => File.Move(_tmp, _path, overwrite: true));
        Simulation.Results.OutputGuard.Forget(_tmp);
        _done = true;
    }

    public void Dispose()
    {
        if (_done) return;
        _w.Dispose();
        Simulation.Results.OutputGuard.Delete(_tmp);
        Simulation.Results.OutputGuard.Forget(_tmp);
    }
}
