using System.CommandLine;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Running;

namespace IommuSim.Cli.Timeline;

/// <summary>The <c>--timeline</c> options of <c>iommusim run</c> and the recorder they ask for.</summary>
internal sealed class TimelineOptions
{
    public readonly Option<string?> File = new("--timeline") { Description = "Write a Chrome/Perfetto trace-event timeline to FILE (docs/timeline.md)" };
    public readonly Option<string?> Window = new("--timeline-window") { Description = "Simulated time the timeline covers, START..END with units (e.g. 10us..20us; either side may be empty)" };
    public readonly Option<int?> MaxRequests = new("--timeline-max-requests") { Description = $"At most this many requests on the timeline (default {TimelineWindow.DefaultMaxRequests})" };

    public IEnumerable<Option> All => [File, Window, MaxRequests];

    /// <summary>Checks the options before anything runs (bad input: exit 2); null when no timeline is asked for.</summary>
    public TimelineSession? Parse(ParseResult pr)
    {
        string? file = pr.GetValue(File);
        string? window = pr.GetValue(Window);
        int? max = pr.GetValue(MaxRequests);
        if (file is null)
        {
            if (window is not null || max is not null)
                throw new ConfigError($"error: {(window is not null ? "--timeline-window" : "--timeline-max-requests")} needs --timeline FILE");
            return null;
        }
        if (file.Length == 0 || Directory.Exists(file)) throw new ConfigError($"error: --timeline = '{file}': expected a file name");
        return new TimelineSession(file, TimelineWindow.Parse(window, max));
    }
}

/// <summary>One run's timeline: attached when the system is built, finished after the run.</summary>
internal sealed class TimelineSession(string path, TimelineWindow window) : IDisposable
{
    private TimelineRecorder? _recorder;

    public string Path { get; } = path;

    /// <summary>For <see cref="SimulationRunner.Run"/>: hangs the recorder on the freshly built system.</summary>
    public void Attach(BuiltSystem system, LoadedConfig loaded)
        => _recorder = new TimelineRecorder(Path, window, system.Platform, loaded.Config.Translation.Design, system.DmaApi, system.Iopf);

    public int Complete(LoadedConfig loaded)
    {
        _recorder?.Complete(loaded.Config.Name);
        return _recorder?.Recorded ?? 0;
    }

    public void Dispose() => _recorder?.Dispose();
}
