namespace IommuSim.Engine.Stats;

/// <summary>Statistics that are zeroed at the end of warm-up.</summary>
public interface IResettable
{
    void Reset();
}
