namespace IommuSim.Engine.Scheduling;

/// <summary>
/// A component that receives events. Events carry a small integer <c>kind</c>, a 64-bit
/// argument and an optional payload reference (a pooled request object), so scheduling
/// never allocates: the handler is the long-lived component itself.
/// </summary>
public interface IEventHandler
{
    void OnEvent(int kind, long arg, object? payload);
}
