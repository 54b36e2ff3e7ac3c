using System.Globalization;
using IommuSim.Simulation.Config;

namespace IommuSim.Simulation.Sweeps;

/// <summary><c>--shard I/N</c>: this process runs the points whose index mod N = I.</summary>
public readonly record struct ShardSpec(int Index, int Count)
{
    public static readonly ShardSpec All = new(0, 1);

    public bool Owns(int pointIndex) => pointIndex % Count == Index;

    public static ShardSpec Parse(string? text)
    {
        if (text is null) return All;
        var parts = text.Split('/');
        if (parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            && n >= 1 && i < n)
            return new ShardSpec(i, n);
        throw new ConfigError($"sweep error: --shard {text}: expected I/N with integers 0 <= I < N (for example --shard 0/4 ... --shard 3/4)");
    }

    public override string ToString() => $"{Index}/{Count}";
}
