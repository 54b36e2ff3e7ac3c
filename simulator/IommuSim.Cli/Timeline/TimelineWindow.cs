using System.Globalization;
using IommuSim.Simulation.Config;

namespace IommuSim.Cli.Timeline;

/// <summary>
/// What <c>--timeline</c> records: simulated time [<see cref="StartPs"/>, <see cref="EndPs"/>) and at
/// most <see cref="MaxRequests"/> DMA requests issued in it (each followed to its completion).
/// </summary>
public sealed record TimelineWindow(long StartPs, long EndPs, int MaxRequests)
{
    /// <summary>Requests recorded when no cap is given: about 20 trace events and 2.3 KB of JSON each.</summary>
    public const int DefaultMaxRequests = 1000;

    /// <summary>
    /// Parses <c>START..END</c> (either side may be empty: from the start, to the end), each a
    /// number with a unit <c>ps</c>, <c>ns</c>, <c>us</c> (or <c>µs</c>), <c>ms</c>, <c>s</c>.
    /// Errors are <see cref="ConfigError"/>s naming the option and what is allowed (exit 2).
    /// </summary>
    public static TimelineWindow Parse(string? window, int? maxRequests)
    {
        const string Opt = "--timeline-window";
        int cap = maxRequests ?? DefaultMaxRequests;
        if (cap <= 0) throw new ConfigError($"error: --timeline-max-requests = {cap}: must be at least 1");
        if (window is null) return new TimelineWindow(0, long.MaxValue, cap);
        int dots = window.IndexOf("..", StringComparison.Ordinal);
        if (dots < 0)
            throw new ConfigError($"error: {Opt} = '{window}': expected START..END with time units, e.g. 10us..20us (either side may be empty)");
        string a = window[..dots].Trim(), b = window[(dots + 2)..].Trim();
        long start = a.Length == 0 ? 0 : ParseTime(Opt, window, a);
        long end = b.Length == 0 ? long.MaxValue : ParseTime(Opt, window, b);
        if (end <= start) throw new ConfigError($"error: {Opt} = '{window}': the end must be after the start");
        return new TimelineWindow(start, end, cap);
    }

    private static long ParseTime(string opt, string whole, string text)
    {
        int i = 0;
        while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.')) i++;
        string num = text[..i], unit = text[i..].Trim();
        long scale = unit switch
        {
            "ps" => 1, "ns" => 1_000, "us" or "µs" => 1_000_000, "ms" => 1_000_000_000, "s" => 1_000_000_000_000,
            _ => 0,
        };
        if (num.Length == 0 || scale == 0 || !decimal.TryParse(num, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v))
            throw new ConfigError($"error: {opt} = '{whole}': '{text}' is not a time; write a non-negative number and a unit ps, ns, us, ms or s (e.g. 10us)");
        decimal ps = v * scale;
        if (ps > long.MaxValue / 2) throw new ConfigError($"error: {opt} = '{whole}': '{text}' is beyond the simulated time range");
        return (long)decimal.Round(ps);
    }
}
