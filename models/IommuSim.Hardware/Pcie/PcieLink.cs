using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.Observers;

namespace IommuSim.Hardware.Pcie;

/// <summary>
/// One direction of a link: a serializer that sends one TLP at a time. ACK and UpdateFC DLLPs and
/// SKP ordered sets share the direction (<see cref="LinkOverheads"/>): each is sent after a fixed
/// number of TLP bytes, chosen so that they take exactly their share of the link's time while it is
/// busy (pcie-model's <c>TLP_bw</c>); one that falls due goes out ahead of the next TLP.
/// </summary>
public sealed class LinkDirection : IResettable
{
    private readonly double _psPerByte;
    private readonly double _ackEvery, _fcEvery, _skpEvery;
    private double _busyUntil;
    private double _sinceAck, _sinceFc, _sinceSkp;

    public LinkDirection(string name, double bytesPerNs) : this(name, bytesPerNs, 0, 0) { }

    /// <param name="ackInterval">Ack latency limit and UpdateFC interval (<see cref="LinkOverheads.AckInterval"/>); 0: none (FLIT mode).</param>
    /// <param name="overheadFraction">Share of the raw rate taken by DLLPs and SKPs (<see cref="LinkOverheads.Fraction"/>).</param>
    public LinkDirection(string name, double bytesPerNs, int ackInterval, double overheadFraction)
    {
        Name = name;
        _psPerByte = 1000.0 / bytesPerNs;
        // Per L bytes of link time one 8-B DLLP: so one per L·(1 − F) bytes of TLPs, F the total share.
        double tlpShare = 1 - overheadFraction;
        _ackEvery = ackInterval > 0 ? ackInterval * tlpShare : double.PositiveInfinity;
        _fcEvery = _ackEvery;
        _skpEvery = ackInterval > 0 ? LinkOverheads.SkpInterval * tlpShare : double.PositiveInfinity;
    }

    public string Name { get; }
    /// <summary>Hooks (tracing); null when nobody listens.</summary>
    public HardwareObserver? Observer { get; internal set; }
    public long Tlps { get; private set; }
    /// <summary>ACK and UpdateFC DLLPs sent.</summary>
    public long Dllps { get; private set; }
    public long SkpOrderedSets { get; private set; }
    public long WireBytes { get; private set; }
    public long PayloadBytes { get; private set; }
    public double BusyPs { get; private set; }

    /// <summary>Queues a TLP of <paramref name="wireBytes"/> at <paramref name="now"/>; returns when its last byte has left.
    /// DLLPs and SKPs that fell due go out first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long Send(long now, int wireBytes, int payload)
    {
        int extra = 0;
        _sinceAck += wireBytes;
        _sinceFc += wireBytes;
        _sinceSkp += wireBytes;
        while (_sinceAck >= _ackEvery) { _sinceAck -= _ackEvery; extra += LinkArithmetic.DllpBytes; Dllps++; }
        while (_sinceFc >= _fcEvery) { _sinceFc -= _fcEvery; extra += LinkArithmetic.DllpBytes; Dllps++; }
        while (_sinceSkp >= _skpEvery) { _sinceSkp -= _skpEvery; extra += LinkOverheads.SkpBytes; SkpOrderedSets++; }
        double start = Math.Max(now, _busyUntil);
        double dur = (wireBytes + extra) * _psPerByte;
        _busyUntil = start + dur;
        BusyPs += dur;
        WireBytes += wireBytes + extra;
        PayloadBytes += payload;
        Tlps++;
        Observer?.OnLinkTransfer(this, (long)Math.Ceiling(start), (long)Math.Ceiling(_busyUntil), wireBytes, payload);
        return (long)Math.Ceiling(_busyUntil);
    }

    /// <summary>Time the serializer becomes free.</summary>
    public long FreeAt => (long)Math.Ceiling(_busyUntil);

    public void Reset()
    {
        Tlps = Dllps = SkpOrderedSets = WireBytes = PayloadBytes = 0;
        BusyPs = 0;
    }
}

/// <summary>
/// A PCIe link between a device and its root port: separate upstream (device → host) and
/// downstream directions, each serializing TLPs at the configured generation and width and paying
/// its share of DLLPs and SKP ordered sets.
/// </summary>
public sealed class PcieLink : IResettable
{
    private readonly PcieOptions _o;

    public PcieLink(string name, PcieOptions options)
    {
        _o = options;
        Name = name;
        double bpn = LinkArithmetic.BytesPerNs(options.Generation, options.Lanes);
        int ack = LinkOverheads.AckInterval(options.Generation, options.Lanes, options.MaxPayloadBytes);
        double f = LinkOverheads.Fraction(options.Generation, options.Lanes, options.MaxPayloadBytes);
        Upstream = new LinkDirection(name + ".up", bpn, ack, f);
        Downstream = new LinkDirection(name + ".down", bpn, ack, f);
    }

    public string Name { get; }
    public LinkDirection Upstream { get; }
    public LinkDirection Downstream { get; }
    public PcieOptions Options => _o;

    /// <summary>Sends a memory-request TLP upstream; returns its arrival time at the root port.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long SendUpstream(long now, int payload)
        => Upstream.Send(now, LinkArithmetic.TlpWireBytes(_o.Generation, payload, _o.Addressing64), payload);

    /// <summary>Sends a completion TLP (3-DW header) downstream; returns its arrival time at the device.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long SendDownstream(long now, int payload)
        => Downstream.Send(now, LinkArithmetic.TlpWireBytes(_o.Generation, payload, false), payload);

    public void Reset()
    {
        Upstream.Reset();
        Downstream.Reset();
    }
}
