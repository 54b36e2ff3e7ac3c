namespace IommuSim.Cli.Timeline;

/// <summary>
/// Threads ("lanes") of one trace track whose slices may overlap in time (device tags, IOMMU input
/// slots, memory accesses): each slice goes to the lowest lane that is free at its start, so slices
/// on one lane never overlap and nesting stays proper. A lane's busy time only grows, so this is
/// correct in any order of arrival (optimal when slices come in start order, as they mostly do).
/// </summary>
internal sealed class Lanes(string prefix)
{
    private readonly List<long> _busyUntil = [];

    public string Prefix { get; } = prefix;

    public int Count => _busyUntil.Count;

    /// <summary>A lane free at <paramref name="startPs"/>, held until <paramref name="endPs"/> (<see cref="long.MaxValue"/>: until <see cref="Release"/>).</summary>
    public int Acquire(long startPs, long endPs)
    {
        for (int i = 0; i < _busyUntil.Count; i++)
        {
            if (_busyUntil[i] <= startPs)
            {
                _busyUntil[i] = endPs;
                return i;
            }
        }
        _busyUntil.Add(endPs);
        return _busyUntil.Count - 1;
    }

    public void Release(int lane, long endPs) => _busyUntil[lane] = endPs;
}
