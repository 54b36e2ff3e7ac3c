namespace IommuSim.Engine.Stats;

/// <summary>Every component registers its stats here so warm-up can reset them all at once.</summary>
public sealed class StatsRegistry
{
    private readonly List<IResettable> _items = [];

    public T Register<T>(T stats) where T : IResettable
    {
        _items.Add(stats);
        return stats;
    }

    public void ResetAll()
    {
        foreach (var s in _items) s.Reset();
    }
}
