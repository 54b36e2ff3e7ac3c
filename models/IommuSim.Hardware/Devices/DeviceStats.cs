using IommuSim.Engine.Stats;

namespace IommuSim.Hardware.Devices;

/// <summary>Per-device request statistics (the <c>devices.&lt;name&gt;.*</c> results).</summary>
public sealed class DeviceStats : IResettable
{
    public long Issued;
    public long Completed;
    public long Faulted;
    public long Bytes;
    public long Tlps;
    public long CreditStalls;
    public readonly LatencyHistogram DmaLatency = new("dma");

    public void Reset()
    {
        Issued = Completed = Faulted = Bytes = Tlps = CreditStalls = 0;
        DmaLatency.Reset();
    }
}
