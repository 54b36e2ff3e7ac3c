namespace IommuSim.Engine.Time;

/// <summary>
/// Simulated time is a 64-bit count of picoseconds (2^63 ps ≈ 106 days of simulated time).
/// These helpers convert to and from the units configs and results use.
/// </summary>
public static class SimTime
{
    public const long Picosecond = 1;
    public const long Nanosecond = 1_000;
    public const long Microsecond = 1_000_000;
    public const long Millisecond = 1_000_000_000;
    public const long Second = 1_000_000_000_000;

    public static long FromNs(double ns) => checked((long)Math.Round(ns * Nanosecond));
    public static long FromUs(double us) => checked((long)Math.Round(us * Microsecond));
    public static double ToNs(long ps) => ps / (double)Nanosecond;
    public static double ToSeconds(long ps) => ps / (double)Second;
}
