using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Workloads.Nic;

/// <summary>
/// A NIC queue (<c>nic-rx</c> or <c>nic-tx</c>): a descriptor ring of 16-byte descriptors in
/// DMA-able memory, the NIC's side of it and the driver's.
/// <para>
/// Per packet the NIC fetches descriptors (one DMA read covers up to <c>descriptorFetchBatch</c>
/// consecutive posted descriptors, kept in an on-chip cache of <c>descriptorCacheEntries</c>), moves
/// the packet (RX: a DMA write into the posted buffer; TX: a DMA read of it) and then writes the
/// descriptor back (a 16-byte DMA write, issued once the buffer DMA completed). The packet is done
/// when the write-back completes; its latency runs from its arrival.
/// </para>
/// <para>
/// RX: packets arrive at the offered rate; one arriving when no posted descriptor is free (the
/// ring is full of received packets the driver has not yet refilled) or when the NIC already
/// holds <c>fifoPackets</c> packets is dropped. TX: the stack hands packets to the driver at the
/// offered rate; one handed over when every ring slot is in use is dropped.
/// </para>
/// <para>
/// The driver is one serial CPU context (a NAPI poll loop). It handles written-back descriptors
/// in ring order. With <c>recycle</c> buffers come round-robin from a pool mapped once (IOVA
/// window bufferCount × bufferBytes). With <c>map-per-packet</c> every buffer goes through the DMA
/// API: RX refill = unmap the received buffer, map a new one, re-post the descriptor; TX = map
/// before posting, unmap when reclaiming the sent descriptor. A descriptor is re-posted only once
/// its map completed, so slow (strict) unmaps starve the ring.
/// </para>
/// </summary>
public sealed class NicWorkload : DeviceModelWorkload, IDmaApiClient
{
    private const int KindArrival = 1;
    private const int KindDriverJob = 2;

    private const long TagKindMask = 7L << 60;
    private const long TagFetch = 1L << 60;
    private const long TagBuffer = 2L << 60;
    private const long TagWriteBack = 3L << 60;

    private const long JobInitPost = 0;  // RX, map-per-packet: the first map of a ring slot
    private const long JobRefill = 1;    // RX: give the NIC a buffer for a slot the driver consumed
    private const long JobSend = 2;      // TX: post a packet the stack handed over
    private const long JobReclaim = 3;   // TX: release a sent packet's slot

    private readonly IDmaApi? _dmaApi;
    private readonly NicOptions _nic;
    private readonly int _n;
    private readonly int _mask;
    private readonly int _packetBytes;
    private readonly int _bufferBytes;
    private readonly int _bufferCount;
    private readonly int _fetchBatch;
    private readonly int _cacheEntries;
    private readonly int _fifo;
    private readonly double _meanGapPs;
    private readonly long _driverPs;

    private readonly ulong[] _slotBuffer;
    private readonly long[] _arrivalPs;
    private readonly bool[] _measured;
    private readonly bool[] _faulted;
    private readonly bool[] _fetched;
    private readonly bool[] _done;
    private readonly Queue<int> _pendingWriteBacks;
    private readonly Queue<long> _driverJobs;

    // Monotonic ring counters (slot = counter & mask).
    private long _posted;       // descriptors handed to the NIC by the driver
    private long _claimed;      // RX: descriptors a received packet took; TX: slots the driver took for a packet
    private long _fetchIssued;  // descriptors whose fetch was issued
    private long _fetchDone;    // descriptors fetched, contiguous from the start
    private long _bufferIssued; // buffer DMAs issued (ring order)
    private long _driverHead;   // written-back descriptors the driver has taken up (ring order)
    private long _freed;        // TX: slots released
    private long _poolNext;     // recycle: next pool buffer

    private bool _arrivalsStarted;
    private bool _driverBusy;
    private long _apiCallPs;

    private readonly TimeAverage _occupancy = new();
    private readonly TimeAverage _full = new();
    private readonly TimeAverage _driverBusyTime = new();

    public NicWorkload(WorkloadOptions options, DmaEngine device, Scheduler scheduler, RequestBudget budget, SimRandom rng,
        IDmaApi? dmaApi, string path = "workload")
        : base(options, device, scheduler, budget, rng)
    {
        if (options.Type is not ("nic-rx" or "nic-tx"))
            throw new ArgumentException($"{path}:type = {options.Type}: a NIC model needs nic-rx or nic-tx");
        var errors = new List<string>();
        options.Validate(path, errors);
        CheckLayout(options, device.Options, path, errors);
        if (errors.Count > 0) throw new ArgumentException(string.Join("; ", errors));
        _nic = options.Nic;
        MapPerPacket = _nic.BufferPolicy == "map-per-packet";
        if (MapPerPacket && dmaApi is null)
            throw new ArgumentException($"{path}:nic:bufferPolicy = map-per-packet: needs the run-time DMA API (translation:dmaApi), which is not available to this run");
        _dmaApi = dmaApi;
        IsRx = options.Type == "nic-rx";
        _n = _nic.RingSize;
        _mask = _n - 1;
        _packetBytes = (int)options.Bytes.Bytes;
        _bufferBytes = (int)_nic.BufferBytes.Bytes;
        _bufferCount = _nic.EffectiveBufferCount;
        _fetchBatch = _nic.DescriptorFetchBatch;
        _cacheEntries = _nic.DescriptorCacheEntries;
        _fifo = _nic.FifoPackets;
        _meanGapPs = 1e12 / _nic.PacketsPerSecond(options.Bytes.Bytes);
        _driverPs = SimTime.FromNs(_nic.DriverNsPerPacket);
        RingIova = RingBase(options, device.Options);
        BufferIova = BufferBase(options, device.Options);
        _slotBuffer = new ulong[_n];
        _arrivalPs = new long[_n];
        _measured = new bool[_n];
        _faulted = new bool[_n];
        _fetched = new bool[_n];
        _done = new bool[_n];
        _pendingWriteBacks = new Queue<int>(_n);
        _driverJobs = new Queue<long>(2 * _n);
        _occupancy.Set(0, IsRx ? _n : 0);
    }

    public bool IsRx { get; }
    public bool MapPerPacket { get; }
    public ulong RingIova { get; }
    /// <summary>recycle: the pool's first buffer.</summary>
    public ulong BufferIova { get; }
    /// <summary>recycle: the IOVA window the buffers cover (what the IOTLB has to reach).</summary>
    public long BufferWindowBytes => MapPerPacket ? 0 : (long)_bufferCount * _bufferBytes;
    public NicStats Stats { get; } = new();
    public override string Section => "nic";
    public override IReadOnlyList<Engine.Stats.LatencyHistogram> Histograms => [Stats.PacketLatency, Stats.MapLatency, Stats.UnmapLatency];

    /// <summary>Descriptors not available for a new packet (RX: holding received packets or waiting
    /// for a refill; TX: holding packets not yet reclaimed).</summary>
    public long RingOccupancy => _occupancy.Value;

    // ---- layout ------------------------------------------------------------------------

    private static ulong RingBase(WorkloadOptions o, DeviceOptions d)
        => o.Nic.RingIova?.Value ?? o.Iova?.Value ?? (d.DmaRegions.Count > 0 ? d.DmaRegions[0].Iova.Value : 0);

    private static ulong BufferBase(WorkloadOptions o, DeviceOptions d)
        => o.Nic.BufferIova?.Value ?? AlignUp(RingBase(o, d) + (ulong)(o.Nic.RingSize * NicOptions.DescriptorBytes), 4096);

    /// <summary>The ring (and, for recycle, the buffer pool) must lie inside the device's dmaRegions.</summary>
    public static void CheckLayout(WorkloadOptions o, DeviceOptions d, string path, List<string> errors)
    {
        var nic = o.Nic;
        if (d.DmaRegions.Count == 0)
        {
            errors.Add($"{path}:device = {d.Name}: a NIC model needs the device to have a dmaRegion for its ring");
            return;
        }
        ulong ring = RingBase(o, d), ringBytes = (ulong)nic.RingSize * NicOptions.DescriptorBytes;
        if (!InsideRegions(d, ring, ringBytes))
            errors.Add($"{path}:nic:ringIova = 0x{ring:x}: the ring [0x{ring:x}, 0x{ring + ringBytes:x}) must lie inside one of {d.Name}'s dmaRegions");
        if (nic.BufferPolicy == "recycle")
        {
            ulong buf = BufferBase(o, d), bytes = (ulong)nic.EffectiveBufferCount * (ulong)Math.Max(0, nic.BufferBytes.Bytes);
            if (!InsideRegions(d, buf, bytes))
                errors.Add($"{path}:nic:bufferIova = 0x{buf:x}: the buffer pool [0x{buf:x}, 0x{buf + bytes:x}) (bufferCount × bufferBytes) must lie inside one of {d.Name}'s dmaRegions");
            else if (buf < ring + ringBytes && ring < buf + bytes)
                errors.Add($"{path}:nic:bufferIova = 0x{buf:x}: the buffer pool overlaps the ring [0x{ring:x}, 0x{ring + ringBytes:x})");
        }
    }

    // ---- start and arrivals -------------------------------------------------------------

    protected override void OnStart()
    {
        if (!IsRx)
        {
            StartArrivals();
            return;
        }
        if (MapPerPacket)
        {
            // Driver initialisation: map a buffer for every slot; the link comes up when the ring is full.
            for (int i = 0; i < _n; i++) EnqueueJob(JobInitPost, i);
            return;
        }
        for (int i = 0; i < _n; i++) _slotBuffer[i] = NextPoolBuffer();
        _posted = _n;
        UpdateOccupancy();
        StartArrivals();
        Pump();
    }

    private void StartArrivals()
    {
        if (_arrivalsStarted) return;
        _arrivalsStarted = true;
        var (gap, count) = NextArrival(_meanGapPs);
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
                    if (OnPacket(measured)) return;
                }
                var (gap, count) = NextArrival(_meanGapPs);
                Schedule(gap, KindArrival, count);
                break;
            case KindDriverJob:
                RunJob(arg);
                break;
        }
    }

    /// <summary>A packet arrives (RX) or is handed to the driver (TX). Returns true when that ended the run.</summary>
    private bool OnPacket(bool measured)
    {
        if (measured) Stats.Offered++;
        if (IsRx)
        {
            if (_posted == _claimed) return Drop(measured, fifo: false);
            if (_claimed - _bufferIssued >= _fifo) return Drop(measured, fifo: true);
        }
        else if (_claimed - _freed == _n) return Drop(measured, fifo: false);
        int slot = (int)(_claimed & _mask);
        _arrivalPs[slot] = Scheduler.Now;
        _measured[slot] = measured;
        _faulted[slot] = false;
        _claimed++;
        UpdateOccupancy();
        if (IsRx) Pump();
        else EnqueueJob(JobSend, slot);
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

    // ---- the NIC --------------------------------------------------------------------------

    /// <summary>Issues what the NIC can: write-backs first (they free the ring), then buffer DMAs, then descriptor fetches.</summary>
    private void Pump()
    {
        while (_pendingWriteBacks.Count > 0)
        {
            int slot = _pendingWriteBacks.Peek();
            if (!TryIssue(RingIova + (ulong)slot * NicOptions.DescriptorBytes, NicOptions.DescriptorBytes, true, _measured[slot], TagWriteBack | (uint)slot)) return;
            _pendingWriteBacks.Dequeue();
            Stats.WriteBacks++;
        }
        long ready = Math.Min(_fetchDone, IsRx ? _claimed : _posted);
        while (_bufferIssued < ready)
        {
            int slot = (int)(_bufferIssued & _mask);
            if (!TryIssue(_slotBuffer[slot], _packetBytes, IsRx, _measured[slot], TagBuffer | (uint)slot)) return;
            _bufferIssued++;
            Stats.BufferDmas++;
        }
        while (true)
        {
            long unfetched = _posted - _fetchIssued;
            long inCache = _fetchIssued - _bufferIssued;
            long room = _cacheEntries - inCache;
            if (unfetched <= 0 || room <= 0) return;
            // RX prefetches in full batches; it fetches fewer only when a packet is waiting for a
            // descriptor or nothing is cached. TX fetches whatever the driver posted.
            bool urgent = !IsRx || _claimed > _fetchIssued || inCache == 0;
            if (!urgent && (unfetched < _fetchBatch || room < _fetchBatch)) return;
            int start = (int)(_fetchIssued & _mask);
            int k = (int)Math.Min(Math.Min(_fetchBatch, unfetched), Math.Min(room, _n - start));
            long tag = TagFetch | ((long)k << 32) | (uint)start;
            if (!TryIssue(RingIova + (ulong)start * NicOptions.DescriptorBytes, k * NicOptions.DescriptorBytes, false, Measuring, tag)) return;
            _fetchIssued += k;
            Stats.DescriptorFetches++;
            Stats.DescriptorsFetched += k;
        }
    }

    protected override void OnDmaDone(long tag, bool faulted)
    {
        if (faulted) Stats.DmaFaults++;
        int slot = (int)(tag & 0xFFFF_FFFF);
        switch (tag & TagKindMask)
        {
            case TagFetch:
            {
                int k = (int)((tag >> 32) & 0xFFFF);
                for (int i = 0; i < k; i++) _fetched[slot + i] = true;
                while (_fetchDone < _fetchIssued && _fetched[_fetchDone & _mask])
                {
                    _fetched[_fetchDone & _mask] = false;
                    _fetchDone++;
                }
                break;
            }
            case TagBuffer:
                if (faulted) _faulted[slot] = true;
                _pendingWriteBacks.Enqueue(slot);
                break;
            case TagWriteBack:
                PacketDone(slot);
                break;
        }
        Pump();
    }

    private void PacketDone(int slot)
    {
        bool measured = _measured[slot];
        if (measured)
        {
            if (_faulted[slot]) Stats.Faulted++;
            else
            {
                Stats.Delivered++;
                Stats.DeliveredBytes += _packetBytes;
            }
            Stats.PacketLatency.Record(Scheduler.Now - _arrivalPs[slot]);
        }
        _done[slot] = true;
        // The driver sees written-back descriptors in ring order.
        while (_driverHead < _bufferIssued && _done[_driverHead & _mask])
        {
            int s = (int)(_driverHead & _mask);
            _done[s] = false;
            _driverHead++;
            EnqueueJob(IsRx ? JobRefill : JobReclaim, s);
        }
        FinishOperation(measured);
    }

    // ---- the driver -----------------------------------------------------------------------

    private void EnqueueJob(long kind, int slot)
    {
        _driverJobs.Enqueue((kind << 32) | (uint)slot);
        KickDriver();
    }

    private void KickDriver()
    {
        if (_driverBusy || _driverJobs.Count == 0) return;
        _driverBusy = true;
        _driverBusyTime.Set(Scheduler.Now, 1);
        // Every job starts through the scheduler (after its CPU time), so DMA-API callbacks that
        // arrive synchronously never nest jobs.
        Schedule(_driverPs, KindDriverJob, _driverJobs.Dequeue());
    }

    private void JobDone()
    {
        _driverBusy = false;
        _driverBusyTime.Set(Scheduler.Now, 0);
        KickDriver();
    }

    private void RunJob(long job)
    {
        long kind = job >> 32;
        int slot = (int)(job & 0xFFFF_FFFF);
        switch (kind)
        {
            case JobInitPost:
                CallMap(job, _bufferBytes, Access.Write);
                break;
            case JobRefill:
                if (MapPerPacket) CallUnmap(job, _slotBuffer[slot], _bufferBytes);
                else
                {
                    Post(slot, NextPoolBuffer());
                    JobDone();
                }
                break;
            case JobSend:
                if (MapPerPacket) CallMap(job, _packetBytes, Access.Read);
                else
                {
                    Post(slot, NextPoolBuffer());
                    JobDone();
                }
                break;
            case JobReclaim:
                if (MapPerPacket) CallUnmap(job, _slotBuffer[slot], _packetBytes);
                else
                {
                    Free();
                    JobDone();
                }
                break;
        }
    }

    private void CallMap(long job, int bytes, Access access)
    {
        _apiCallPs = Scheduler.Now;
        _dmaApi!.Map(Device, bytes, access, this, job);
    }

    private void CallUnmap(long job, ulong iova, int bytes)
    {
        _apiCallPs = Scheduler.Now;
        _dmaApi!.Unmap(Device, iova, bytes, this, job);
    }

    void IDmaApiClient.OnMapped(long tag, ulong iova)
    {
        Stats.Maps++;
        Stats.MapLatency.Record(Scheduler.Now - _apiCallPs);
        Post((int)(tag & 0xFFFF_FFFF), iova);
        JobDone();
    }

    void IDmaApiClient.OnUnmapped(long tag)
    {
        Stats.Unmaps++;
        Stats.UnmapLatency.Record(Scheduler.Now - _apiCallPs);
        if (tag >> 32 == JobRefill) CallMap(tag, _bufferBytes, Access.Write); // same job: now map the replacement
        else
        {
            Free();
            JobDone();
        }
    }

    private ulong NextPoolBuffer()
    {
        ulong iova = BufferIova + (ulong)(_poolNext % _bufferCount) * (ulong)_bufferBytes;
        _poolNext++;
        return iova;
    }

    /// <summary>The driver writes a descriptor (CPU store, no DMA) and rings the doorbell.</summary>
    private void Post(int slot, ulong bufferIova)
    {
        if (slot != (int)(_posted & _mask)) throw new InvalidOperationException($"{Device.Name}: descriptor {slot} posted out of ring order (tail {_posted & _mask})");
        _slotBuffer[slot] = bufferIova;
        _posted++;
        UpdateOccupancy();
        if (IsRx && _posted == _n) StartArrivals();
        Pump();
    }

    private void Free()
    {
        _freed++;
        UpdateOccupancy();
    }

    private void UpdateOccupancy()
    {
        long occ = IsRx ? _n - (_posted - _claimed) : _claimed - _freed;
        long now = Scheduler.Now;
        _occupancy.Set(now, occ);
        _full.Set(now, occ >= _n ? 1 : 0);
    }

    // ---- statistics ---------------------------------------------------------------------

    protected override void ResetStats(long nowPs)
    {
        Stats.Reset();
        _occupancy.Reset(nowPs);
        _full.Reset(nowPs);
        _driverBusyTime.Reset(nowPs);
    }

    /// <summary>
    /// <c>devices.&lt;name&gt;.nic.*</c>: packetsOffered, packetsDelivered (received for RX, sent for
    /// TX), packetsDropped, droppedRingFull, droppedFifoFull, packetsFaulted, dropRate,
    /// throughputGbps (delivered packet bytes), mpps, latencyNs.{mean,p50,p90,p99,p999,max}
    /// (arrival → write-back complete), ringSize, ringOccupancyMean, ringOccupancyMax,
    /// ringFullFraction (share of time no descriptor was free), descriptorFetches,
    /// descriptorsPerFetch, bufferDmas, writeBacks, dmaFaults, bufferWindowBytes (recycle),
    /// maps, unmaps, mapLatencyNs.mean, unmapLatencyNs.mean, driverBusyFraction.
    /// </summary>
    public override IReadOnlyList<KeyValuePair<string, double>> Summary(double windowNs = 0)
    {
        double w = Window(windowNs);
        long now = Scheduler.Now;
        var s = Stats;
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
        list.Add(new("ringSize", _n));
        list.Add(new("ringOccupancyMean", Round(_occupancy.Mean(now))));
        list.Add(new("ringOccupancyMax", _occupancy.Max));
        list.Add(new("ringFullFraction", Round(_full.Mean(now))));
        list.Add(new("descriptorFetches", s.DescriptorFetches));
        list.Add(new("descriptorsPerFetch", Round(s.DescriptorFetches > 0 ? s.DescriptorsFetched / (double)s.DescriptorFetches : 0)));
        list.Add(new("bufferDmas", s.BufferDmas));
        list.Add(new("writeBacks", s.WriteBacks));
        list.Add(new("dmaFaults", s.DmaFaults));
        list.Add(new("bufferWindowBytes", BufferWindowBytes));
        list.Add(new("maps", s.Maps));
        list.Add(new("unmaps", s.Unmaps));
        list.Add(new("mapLatencyNs.mean", Round(s.MapLatency.Mean / 1000.0)));
        list.Add(new("unmapLatencyNs.mean", Round(s.UnmapLatency.Mean / 1000.0)));
        list.Add(new("driverBusyFraction", Round(_driverBusyTime.Mean(now))));
        return list;
    }
}
