using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;
using IommuSim.Workloads.DeviceModels;

namespace IommuSim.Workloads.Nic;

/// <summary>
/// A NIC (<c>nic-rx</c> or <c>nic-tx</c>) with <c>queues</c> descriptor rings of 16-byte
/// descriptors in DMA-able memory, the NIC's side of them and the driver's.
/// <para>
/// Per packet the NIC fetches descriptors (one DMA read covers up to <c>descriptorFetchBatch</c>
/// consecutive posted descriptors, kept in a per-queue on-chip cache of
/// <c>descriptorCacheEntries</c>), moves the packet (RX: a DMA write into the posted buffer; TX: a
/// DMA read of it) and then writes the descriptor back (a 16-byte DMA write, issued in ring order
/// once the buffer DMA completed; <c>writeBackBatch</c> > 1 covers several consecutive descriptors
/// with one write). The packet is done when its write-back completes; its latency runs
/// from its arrival. With several queues, packets are spread uniformly over them (RSS over many
/// flows) and the NIC serves the queues round-robin.
/// </para>
/// <para>
/// RX: packets arrive at the offered rate; one arriving when its queue has no posted descriptor
/// left (the ring is full of received packets the driver has not yet refilled) or when the NIC
/// already holds <c>fifoPackets</c> packets is dropped. TX: the stack hands packets to the driver
/// at the offered rate; one handed over when every slot of its queue's ring is in use is dropped.
/// With <c>lineRateGbps</c>, RX packets arrive one after another at that rate (a burst is spread
/// over the wire; a packet is received when its last bit is in), and TX packets leave through the
/// port one at a time at that rate, in the
/// order their buffer reads complete; the NIC reads at most <c>fifoPackets</c> packets ahead of the
/// wire, and writes a descriptor back once its packet has been sent. Without it a TX packet counts as
/// sent when its buffer read completes, so TX throughput is bounded only by PCIe and the IOMMU.
/// </para>
/// <para>
/// The parts: this class is the traffic (arrivals, the wire, RSS over the queues) and the
/// statistics; <see cref="NicController"/> is the NIC's side of the rings, <see cref="NicDriver"/>
/// the driver's (one CPU context per queue; recycle pools or map-per-packet through the DMA API),
/// <see cref="NicQueue"/> a ring both sides share.
/// </para>
/// </summary>
public sealed class NicWorkload : DeviceModelWorkload
{
    private const int KindArrival = 1;
    internal const int KindSent = 3;      // TX with a line rate: the packet at the head of the wire queue has left
    private const int KindReceived = 4;   // RX with a line rate: a packet's last bit has arrived (arg: 1 if measured)
    internal const int KindTxStreamSent = 5; // the transmit stream's port: its head packet has left

    private readonly IDmaApi? _dmaApiArg;
    private readonly string _path;
    private readonly NicOptions _nic;
    private readonly NicQueue[] _queues;
    private readonly NicController _controller;
    private readonly NicDriver _driver;
    private readonly ArrivalProcess _arrivals;
    private readonly int _n;
    private readonly int _packetBytes;
    private readonly int _bufferBytes;
    private readonly int _bufferCount;
    private readonly bool _rxSerialised;  // RX with a line rate: packets arrive one after another on the wire
    private readonly long _wirePs;        // one packet's time on the wire
    private long _rxWireFree;             // RX, serialised: when the wire is free for the next packet
    private bool _arrivalsStarted;
    // The transmit stream riding on a receive workload (nic.txFraction): its own rings, NIC side and driver side.
    private readonly NicQueue[]? _txQueues;
    private readonly NicController? _txController;
    private readonly NicDriver? _txDriver;
    private readonly double[]? _txCredit;

    public NicWorkload(WorkloadOptions options, DmaEngine device, Scheduler scheduler, RequestBudget budget, SimRandom rng,
        IDmaApi? dmaApi, string path = "workload")
        : base(options, device, scheduler, budget, rng)
    {
        if (options.Type is not ("nic-rx" or "nic-tx"))
            throw new ArgumentException($"{path}:type = {options.Type}: a NIC model needs nic-rx or nic-tx");
        ThrowIfInvalid(options, device, path, CheckLayout);
        _nic = options.Nic;
        MapPerPacket = _nic.BufferPolicy == "map-per-packet";
        _dmaApiArg = dmaApi;
        _path = path;
        IsRx = options.Type == "nic-rx";
        _n = _nic.RingSize;
        _packetBytes = (int)options.Bytes.Bytes;
        _bufferBytes = (int)_nic.BufferBytes.Bytes;
        _bufferCount = _nic.EffectiveBufferCount;
        _arrivals = NewArrivals(1e12 / _nic.PacketsPerSecond(options.Bytes.Bytes));
        RingIova = RingBase(options, device.Options);
        BufferIova = BufferBase(options, device.Options);
        _queues = new NicQueue[_nic.Queues];
        for (int q = 0; q < _queues.Length; q++)
            _queues[q] = new NicQueue(q, _n, RingIova + (ulong)q * _nic.RingStride,
                BufferIova + (ulong)q * (ulong)_bufferCount * (ulong)_bufferBytes, IsRx);
        _controller = new NicController(this, scheduler, _queues, _nic, _packetBytes, IsRx, Stats);
        _driver = new NicDriver(this, scheduler, _controller, _queues, _nic, _packetBytes, IsRx, Stats, rng, device);
        _controller.Driver = _driver;
        if (IsRx && _nic.TxFraction > 0)
        {
            // TX rings follow the RX rings; queue q's TX ring is driven by the same driver CPU as its RX ring.
            ulong txRings = RingIova + (ulong)_nic.Queues * _nic.RingStride;
            _txQueues = new NicQueue[_nic.Queues];
            for (int q = 0; q < _txQueues.Length; q++) _txQueues[q] = new NicQueue(q, _n, txRings + (ulong)q * _nic.RingStride, 0, rx: false);
            _txController = new NicController(this, scheduler, _txQueues, _nic, _nic.TxBytes, false, TxStats, txStream: true);
            _txDriver = new NicDriver(this, scheduler, _txController, _txQueues, _nic, _nic.TxBytes, false, TxStats, rng, device);
            _txController.Driver = _txDriver;
            _txCredit = new double[_nic.Queues];
        }
        _rxSerialised = IsRx && _nic.LineRateGbps > 0;
        _wirePs = _nic.LineRateGbps > 0 ? _nic.WirePs(_packetBytes) : 0;
    }

    public bool IsRx { get; }
    public bool MapPerPacket { get; }
    /// <summary>Queue 0's ring.</summary>
    public ulong RingIova { get; }
    /// <summary>recycle: queue 0's first pool buffer.</summary>
    public ulong BufferIova { get; }
    public int QueueCount => _queues.Length;
    /// <summary>recycle: the IOVA window the buffers of all queues cover (what the IOTLB has to reach).</summary>
    public long BufferWindowBytes => MapPerPacket ? 0 : (long)_queues.Length * _bufferCount * _bufferBytes;
    public NicStats Stats { get; } = new();
    /// <summary>The transmit stream's counters (nic.txFraction &gt; 0).</summary>
    public NicStats TxStats { get; } = new();
    public bool HasTxStream => _txQueues is not null;
    public override string Section => "nic";
    public override IReadOnlyList<Engine.Stats.LatencyHistogram> Histograms => [Stats.PacketLatency, Stats.MapLatency, Stats.UnmapLatency];

    /// <summary>Descriptors not available for a new packet, all queues (RX: holding received packets
    /// or waiting for a refill; TX: holding packets not yet reclaimed).</summary>
    public long RingOccupancy => _queues.Sum(q => q.Occupancy.Value);

    /// <summary>The IOVA of queue <paramref name="queue"/>'s ring.</summary>
    public ulong RingIovaOf(int queue) => _queues[queue].RingIova;

    // ---- layout ------------------------------------------------------------------------

    private static ulong RingBase(WorkloadOptions o, DeviceOptions d)
        => o.Nic.RingIova?.Value ?? o.Iova?.Value ?? (d.DmaRegions.Count > 0 ? d.DmaRegions[0].Iova.Value : 0);

    private static ulong RingsBytes(NicOptions n) => (ulong)Math.Max(1, n.Queues) * n.RingStride * (n.TxFraction > 0 ? 2UL : 1UL);

    private static ulong BufferBase(WorkloadOptions o, DeviceOptions d)
        => o.Nic.BufferIova?.Value ?? AlignUp(RingBase(o, d) + RingsBytes(o.Nic), 4096);

    /// <summary>The rings (and, for recycle, the buffer pools) must lie inside the device's dmaRegions.</summary>
    public static void CheckLayout(WorkloadOptions o, DeviceOptions d, string path, List<string> errors)
    {
        var nic = o.Nic;
        if (d.DmaRegions.Count == 0)
        {
            errors.Add($"{path}:device = {d.Name}: a NIC model needs the device to have a dmaRegion for its rings");
            return;
        }
        if (nic.RingSize < 1 || nic.Queues < 1) return; // range errors are reported by Validate
        ulong ring = RingBase(o, d), ringBytes = RingsBytes(nic);
        if (!InsideRegions(d, ring, ringBytes))
            errors.Add($"{path}:nic:ringIova = 0x{ring:x}: the rings [0x{ring:x}, 0x{ring + ringBytes:x}) must lie inside one of {d.Name}'s dmaRegions");
        if (nic.BufferPolicy == "recycle")
        {
            ulong buf = BufferBase(o, d), bytes = (ulong)nic.Queues * (ulong)nic.EffectiveBufferCount * (ulong)Math.Max(0, nic.BufferBytes.Bytes);
            if (!InsideRegions(d, buf, bytes))
                errors.Add($"{path}:nic:bufferIova = 0x{buf:x}: the buffer pools [0x{buf:x}, 0x{buf + bytes:x}) (queues × bufferCount × bufferBytes) must lie inside one of {d.Name}'s dmaRegions");
            else if (buf < ring + ringBytes && ring < buf + bytes)
                errors.Add($"{path}:nic:bufferIova = 0x{buf:x}: the buffer pools overlap the rings [0x{ring:x}, 0x{ring + ringBytes:x})");
        }
    }

    // ---- start, arrivals and the wire ---------------------------------------------------

    protected override void OnStart()
    {
        if (MapPerPacket) _driver.Api = ResolveDmaApi(_dmaApiArg, $"{_path}:nic:bufferPolicy = map-per-packet");
        if (_txDriver is not null) _txDriver.Api = _driver.Api;
        if (!IsRx)
        {
            StartArrivals();
            return;
        }
        _driver.FillRings();
        if (MapPerPacket) return; // the link comes up when the driver has filled every ring
        StartArrivals();
        _controller.Pump();
    }

    internal void StartArrivals()
    {
        if (_arrivalsStarted) return;
        _arrivalsStarted = true;
        var (gap, count) = _arrivals.Next();
        Schedule(gap, KindArrival, count);
    }

    protected override void OnModelEvent(int kind, long arg)
    {
        switch (kind)
        {
            case KindArrival:
                for (long i = 0; i < arg; i++)
                {
                    if (!TakeOperation(out bool measured)) return; // the run issues no more packets
                    if (_rxSerialised)
                    {
                        // Packets sent at the same moment (a burst) still arrive one wire time apart: each is
                        // received when its last bit is in.
                        _rxWireFree = Math.Max(Scheduler.Now, _rxWireFree) + _wirePs;
                        Schedule(_rxWireFree - Scheduler.Now, KindReceived, measured ? 1 : 0);
                    }
                    else if (OnPacket(measured)) return;
                }
                var (gap, count) = _arrivals.Next();
                Schedule(gap, KindArrival, count);
                break;
            case KindSent:
                _controller.PacketSent();
                break;
            case KindReceived:
                OnPacket(arg == 1);
                break;
            case KindTxStreamSent:
                _txController!.PacketSent();
                break;
        }
    }

    /// <summary>A packet arrives (RX) or is handed to the driver (TX), on a queue chosen uniformly (RSS over
    /// many flows). Returns true when that ended the run.</summary>
    private bool OnPacket(bool measured)
    {
        if (measured) Stats.Offered++;
        var q = _queues.Length == 1 ? _queues[0] : _queues[Random.NextBelow((ulong)_queues.Length)];
        if (q.NoFreeSlot) return Drop(measured, fifo: false);
        if (IsRx && !_controller.TryAdmit()) return Drop(measured, fifo: true);
        int slot = q.Claim(Scheduler.Now, measured);
        if (IsRx) _controller.Pump();
        else _driver.Send(q, slot);
        return false;
    }

    private bool Drop(bool measured, bool fifo)
    {
        if (measured)
        {
            if (fifo) Stats.DroppedFifoFull++;
            else Stats.DroppedRingFull++;
        }
        return FinishOperation(measured);
    }

    protected override void OnDmaDone(long tag, bool faulted)
    {
        if (_txController is null) { _controller.OnDmaDone(tag, faulted); return; }
        // Both streams share the device's tags: a completion on one may let the other issue.
        if ((tag & NicController.TagTxStream) != 0) { _txController.OnDmaDone(tag, faulted); _controller.Pump(); }
        else { _controller.OnDmaDone(tag, faulted); _txController.Pump(); }
    }

    /// <summary>RX: a packet of queue <paramref name="queue"/> was delivered; the transmit stream sends txFraction
    /// packets per delivered one on the same queue (accumulated, so the stream is deterministic). A packet finding
    /// the TX ring full is dropped.</summary>
    internal void RxPacketDone(int queue)
    {
        if (_txCredit is null) return;
        _txCredit[queue] += _nic.TxFraction;
        if (_txCredit[queue] < 1) return;
        _txCredit[queue] -= 1;
        var q = _txQueues![queue];
        bool measured = Measuring;
        if (measured) TxStats.Offered++;
        if (q.NoFreeSlot)
        {
            if (measured) TxStats.DroppedRingFull++;
            return;
        }
        int slot = q.Claim(Scheduler.Now, measured);
        _txDriver!.Send(q, slot);
    }

    // ---- statistics ---------------------------------------------------------------------

    protected override void ResetStats(long nowPs)
    {
        Stats.Reset();
        foreach (var q in _queues)
        {
            q.Occupancy.Reset(nowPs);
            q.Full.Reset(nowPs);
        }
        foreach (var cpu in _driver.Cpus) cpu.BusyTime.Reset(nowPs);
        if (_txQueues is null) return;
        TxStats.Reset();
        foreach (var q in _txQueues)
        {
            q.Occupancy.Reset(nowPs);
            q.Full.Reset(nowPs);
        }
        foreach (var cpu in _txDriver!.Cpus) cpu.BusyTime.Reset(nowPs);
    }

    /// <summary>
    /// <c>devices.&lt;name&gt;.nic.*</c>: packetsOffered, packetsDelivered (received for RX, sent for
    /// TX), packetsDropped, droppedRingFull, droppedFifoFull, packetsFaulted, dropRate,
    /// throughputGbps (delivered packet bytes), mpps, latencyNs.{mean,p50,p90,p99,p999,max}
    /// (arrival → write-back complete), queues, ringSize, ringOccupancyMean (per queue, averaged
    /// over queues), ringOccupancyMax (largest of any queue), ringFullFraction (share of time a
    /// queue had no free descriptor, averaged over queues), descriptorFetches, descriptorsPerFetch,
    /// bufferDmas, writeBacks, dmaFaults, bufferWindowBytes (recycle), maps, unmaps,
    /// mapLatencyNs.mean, unmapLatencyNs.mean, driverBusyFraction (averaged over the queues' CPUs); with a
    /// transmit stream (nic.txFraction) also tx.packetsOffered, tx.packetsDelivered, tx.packetsDropped,
    /// tx.throughputGbps, tx.bufferDmas, tx.maps, tx.unmaps, tx.latencyNs.p50.
    /// </summary>
    public override IReadOnlyList<KeyValuePair<string, double>> Summary(double windowNs = 0)
    {
        double w = Window(windowNs);
        long now = Scheduler.Now;
        var s = Stats;
        double occupancy = 0, full = 0, busy = 0;
        long occupancyMax = 0;
        foreach (var q in _queues)
        {
            occupancy += q.Occupancy.Mean(now);
            full += q.Full.Mean(now);
            occupancyMax = Math.Max(occupancyMax, q.Occupancy.Max);
        }
        foreach (var cpu in _driver.Cpus) busy += cpu.BusyTime.Mean(now);
        int nq = _queues.Length;
        var list = new List<KeyValuePair<string, double>>
        {
            new("packetsOffered", s.Offered),
            new("packetsDelivered", s.Delivered),
            new("packetsDropped", s.Dropped),
            new("droppedRingFull", s.DroppedRingFull),
            new("droppedFifoFull", s.DroppedFifoFull),
            new("packetsFaulted", s.Faulted),
            new("dropRate", Round(s.Offered > 0 ? s.Dropped / (double)s.Offered : 0)),
            new("throughputGbps", Round(w > 0 ? s.DeliveredBytes * 8.0 / w : 0)),
            new("mpps", Round(w > 0 ? s.Delivered * 1000.0 / w : 0)),
        };
        AddLatency(list, "latencyNs", s.PacketLatency);
        list.Add(new("queues", nq));
        list.Add(new("ringSize", _n));
        list.Add(new("ringOccupancyMean", Round(occupancy / nq)));
        list.Add(new("ringOccupancyMax", occupancyMax));
        list.Add(new("ringFullFraction", Round(full / nq)));
        list.Add(new("descriptorFetches", s.DescriptorFetches));
        list.Add(new("descriptorsPerFetch", Round(s.DescriptorFetches > 0 ? s.DescriptorsFetched / (double)s.DescriptorFetches : 0)));
        list.Add(new("bufferDmas", s.BufferDmas));
        list.Add(new("writeBacks", s.WriteBacks));
        list.Add(new("descriptorsPerWriteBack", Round(s.WriteBacks > 0 ? s.DescriptorsWrittenBack / (double)s.WriteBacks : 0)));
        list.Add(new("dmaFaults", s.DmaFaults));
        list.Add(new("bufferWindowBytes", BufferWindowBytes));
        list.Add(new("maps", s.Maps));
        list.Add(new("unmaps", s.Unmaps));
        list.Add(new("mapLatencyNs.mean", Round(s.MapLatency.Mean / 1000.0)));
        list.Add(new("unmapLatencyNs.mean", Round(s.UnmapLatency.Mean / 1000.0)));
        list.Add(new("driverBusyFraction", Round(busy / nq)));
        if (_txQueues is not null)
        {
            // The transmit stream (nic.txFraction): tx.*
            var t = TxStats;
            list.Add(new("tx.packetsOffered", t.Offered));
            list.Add(new("tx.packetsDelivered", t.Delivered));
            list.Add(new("tx.packetsDropped", t.Dropped));
            list.Add(new("tx.throughputGbps", Round(w > 0 ? t.DeliveredBytes * 8.0 / w : 0)));
            list.Add(new("tx.bufferDmas", t.BufferDmas));
            list.Add(new("tx.maps", t.Maps));
            list.Add(new("tx.unmaps", t.Unmaps));
            list.Add(new("tx.latencyNs.p50", t.PacketLatency.Count == 0 ? 0 : t.PacketLatency.Percentile(50) / 1000.0));
        }
        return list;
    }
}
