using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.Observers;

namespace IommuSim.Hardware.Pcie;

/// <summary>One direction of a link: a serializer that sends one TLP or DLLP at a time.</summary>
public sealed class LinkDirection : IResettable
{
    private readonly double _psPerByte;
    private double _busyUntil;

    public LinkDirection(string name, double bytesPerNs)
    {
        Name = name;
        _psPerByte = 1000.0 / bytesPerNs;
    }

    public string Name { get; }
    /// <summary>Hooks (tracing); null when nobody listens.</summary>
    public HardwareObserver? Observer { get; internal set; }
    public long Tlps { get; private set; }
    public long Dllps { get; private set; }
    public long WireBytes { get; private set; }
    public long PayloadBytes { get; private set; }
    public double BusyPs { get; private set; }

    /// <summary>Queues a TLP of <paramref name="wireBytes"/> at <paramref name="now"/>; returns when its last byte has left.
    /// DLLPs queued since the previous TLP go out first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long Send(long now, int wireBytes, int payload)
    {
        double start = Math.Max(now, _busyUntil);
        double dur = (wireBytes + _pendingDllpBytes) * _psPerByte;
        _pendingDllpBytes = 0;
        _busyUntil = start + dur;
        BusyPs += wireBytes * _psPerByte;
        WireBytes += wireBytes;
        PayloadBytes += payload;
        Tlps++;
        Observer?.OnLinkTransfer(this, (long)Math.Ceiling(start), (long)Math.Ceiling(_busyUntil), wireBytes, payload);
        return (long)Math.Ceiling(_busyUntil);
    }

    /// <summary>
    /// A DLLP (ACK or UpdateFC) to send in this direction. DLLPs are generated in reaction to TLPs
    /// in the other direction, possibly "in the future" of this serializer's callers, so instead of
    /// reserving a slot at that time they are charged to the next TLP sent here (or cost nothing
    /// if the direction stays idle).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void QueueDllp()
    {
        _pendingDllpBytes += LinkArithmetic.DllpBytes;
        Dllps++;
        WireBytes += LinkArithmetic.DllpBytes;
        BusyPs += LinkArithmetic.DllpBytes * _psPerByte;
    }

    private int _pendingDllpBytes;

    /// <summary>Time the serializer becomes free.</summary>
    public long FreeAt => (long)Math.Ceiling(_busyUntil);

    public void Reset()
    {
        Tlps = Dllps = WireBytes = PayloadBytes = 0;
        BusyPs = 0;
    }
}

/// <summary>
/// A PCIe link between a device and its root port: separate upstream (device → host) and
/// downstream directions, each serializing TLPs at the configured generation and width, and
/// DLLPs (ACKs, flow-control updates) flowing opposite to the TLPs they acknowledge.
/// </summary>
public sealed class PcieLink : IResettable
{
    private readonly PcieOptions _o;
    private int _upAckCount, _downAckCount, _upFcCount, _downFcCount;

    public PcieLink(string name, PcieOptions options)
    {
        _o = options;
        Name = name;
        double bpn = LinkArithmetic.BytesPerNs(options.Generation, options.Lanes);
        Upstream = new LinkDirection(name + ".up", bpn);
        Downstream = new LinkDirection(name + ".down", bpn);
    }

    public string Name { get; }
    public LinkDirection Upstream { get; }
    public LinkDirection Downstream { get; }
    public PcieOptions Options => _o;

    /// <summary>Sends a memory-request TLP upstream; returns its arrival time at the root port.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long SendUpstream(long now, int payload)
    {
        long t = Upstream.Send(now, LinkArithmetic.TlpWireBytes(_o.Generation, payload, _o.Addressing64), payload);
        // The root port acknowledges and returns credits with DLLPs on the downstream direction.
        if (++_upAckCount >= _o.TlpsPerAck) { _upAckCount = 0; Downstream.QueueDllp(); }
        if (++_upFcCount >= _o.TlpsPerFcUpdate) { _upFcCount = 0; Downstream.QueueDllp(); }
        return t;
    }

    /// <summary>Sends a completion TLP (3-DW header) downstream; returns its arrival time at the device.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long SendDownstream(long now, int payload)
    {
        long t = Downstream.Send(now, LinkArithmetic.TlpWireBytes(_o.Generation, payload, false), payload);
        if (++_downAckCount >= _o.TlpsPerAck) { _downAckCount = 0; Upstream.QueueDllp(); }
        if (++_downFcCount >= _o.TlpsPerFcUpdate) { _downFcCount = 0; Upstream.QueueDllp(); }
        return t;
    }

    public void Reset()
    {
        Upstream.Reset();
        Downstream.Reset();
    }
}
