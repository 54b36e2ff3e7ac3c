using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;

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
/// Each queue's driver is one serial CPU context (a NAPI poll loop on its own core). It handles
/// written-back descriptors in ring order. With <c>recycle</c> buffers come round-robin from a
/// per-queue pool mapped once (IOVA window queues × bufferCount × bufferBytes). With
/// <c>map-per-packet</c> every buffer goes through the DMA API: RX refill = unmap the received
/// buffer, map a new one, re-post the descriptor; TX = map before posting, unmap when reclaiming
/// the sent descriptor. A descriptor is re-posted only once its map completed, so slow (strict)
/// unmaps starve the ring.
/// </para>
/// </summary>
public sealed class NicWorkload : DeviceModelWorkload, IDmaApiClient
{
    private const int KindArrival = 1;
    private const int KindDriverJob = 2;
    private const int KindSent = 3;      // TX with a line rate: the packet at the head of the wire queue has left
    private const int KindReceived = 4;  // RX with a line rate: a packet's last bit has arrived (arg: 1 if measured)

    // DMA tags: kind (bits 60–62) | queue (48–59) | descriptor count (32–47) | slot (0–31).
    private const long TagKindMask = 7L << 60;
    private const long TagFetch = 1L << 60;
    private const long TagBuffer = 2L << 60;
    private const long TagWriteBack = 3L << 60;
    private const long TagStray = 4L << 60;
    private const int QueueShift = 48;

    // Driver jobs (event argument and DMA-API tag): queue (48–59) | kind (32–39) | slot (0–31).
    private const long JobInitPost = 0;  // RX, map-per-packet: the first map of a ring slot
    private const long JobRefill = 1;    // RX: give the NIC a buffer for a slot the driver consumed
    private const long JobSend = 2;      // TX: post a packet the stack handed over
    private const long JobReclaim = 3;   // TX: release a sent packet's slot

    private readonly IDmaApi? _dmaApiArg;
    private readonly string _path;
    private IDmaApi? _dmaApi;
    private readonly NicOptions _nic;
    private readonly Queue[] _queues;
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
    private readonly int _wbBatch;
    private readonly Queue<long> _pendingWriteBacks; // queue << 48 | count << 32 | first slot
    private readonly bool _paced;                     // TX with a line rate: packets leave through the port one at a time
    private readonly bool _rxSerialised;              // RX with a line rate: packets arrive one after another on the wire
    private long _rxWireFree;                         // RX, serialised: when the wire is free for the next packet
    private readonly long _wirePs;                    // one packet's time on the wire
    private readonly Queue<long> _wireQueue;          // TX, paced: packets read and waiting for the wire: queue << 48 | slot
    private bool _wireBusy;

    private int _inFifo;          // RX: packets claimed whose buffer DMA is not yet issued; paced TX: read, not yet sent (all queues)
    private int _queuesFilled;    // RX map-per-packet: queues whose initial fill is complete
    private int _roundRobin;
    private bool _arrivalsStarted;

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
        _dmaApiArg = dmaApi;
        _path = path;
        IsRx = options.Type == "nic-rx";
        _n = _nic.RingSize;
        _mask = _n - 1;
        _packetBytes = (int)options.Bytes.Bytes;
        _bufferBytes = (int)_nic.BufferBytes.Bytes;
        _bufferCount = _nic.EffectiveBufferCount;
        _fetchBatch = _nic.DescriptorFetchBatch;
        _wbBatch = _nic.WriteBackBatch;
        _cacheEntries = _nic.DescriptorCacheEntries;
        _fifo = _nic.FifoPackets;
        _meanGapPs = 1e12 / _nic.PacketsPerSecond(options.Bytes.Bytes);
        _driverPs = SimTime.FromNs(_nic.DriverNsPerPacket);
        RingIova = RingBase(options, device.Options);
        BufferIova = BufferBase(options, device.Options);
        _queues = new Queue[_nic.Queues];
        for (int q = 0; q < _queues.Length; q++)
            _queues[q] = new Queue(q, _n, RingIova + (ulong)q * _nic.RingStride,
                BufferIova + (ulong)q * (ulong)_bufferCount * (ulong)_bufferBytes, IsRx);
        _pendingWriteBacks = new Queue<long>(_n);
        _paced = !IsRx && _nic.LineRateGbps > 0;
        _rxSerialised = IsRx && _nic.LineRateGbps > 0;
        _wirePs = _nic.LineRateGbps > 0 ? _nic.WirePs(_packetBytes) : 0;
        _wireQueue = new Queue<long>(_paced ? _fifo : 0);
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

    private static ulong RingsBytes(NicOptions n) => (ulong)Math.Max(1, n.Queues) * n.RingStride;

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

    // ---- start and arrivals -------------------------------------------------------------

    protected override void OnStart()
    {
        if (MapPerPacket) _dmaApi = ResolveDmaApi(_dmaApiArg, $"{_path}:nic:bufferPolicy = map-per-packet");
        if (!IsRx)
        {
            StartArrivals();
            return;
        }
        foreach (var q in _queues)
        {
            if (MapPerPacket)
            {
                // Driver initialisation: map a buffer for every slot; the link comes up when every ring is full.
                for (int i = 0; i < _n; i++) EnqueueJob(q, JobInitPost, i);
                continue;
            }
            for (int i = 0; i < _n; i++) q.SlotBuffer[i] = NextPoolBuffer(q);
            q.Posted = _n;
            UpdateOccupancy(q);
        }
        if (MapPerPacket) return;
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
                    if (_rxSerialised)
                    {
                        // Packets sent at the same moment (a burst) still arrive one wire time apart: each is
                        // received when its last bit is in.
                        _rxWireFree = Math.Max(Scheduler.Now, _rxWireFree) + _wirePs;
                        Schedule(_rxWireFree - Scheduler.Now, KindReceived, measured ? 1 : 0);
                    }
                    else if (OnPacket(measured)) return;
                }
                var (gap, count) = NextArrival(_meanGapPs);
                Schedule(gap, KindArrival, count);
                break;
            case KindDriverJob:
                RunJob(arg);
                break;
            case KindSent:
                PacketSent();
                break;
            case KindReceived:
                OnPacket(arg == 1);
                break;
        }
    }

    /// <summary>A packet arrives (RX) or is handed to the driver (TX). Returns true when that ended the run.</summary>
    private bool OnPacket(bool measured)
    {
        if (measured) Stats.Offered++;
        var q = _queues.Length == 1 ? _queues[0] : _queues[Random.NextBelow((ulong)_queues.Length)];
        if (IsRx)
        {
            if (q.Posted == q.Claimed) return Drop(measured, fifo: false);
            if (_inFifo >= _fifo) return Drop(measured, fifo: true);
            _inFifo++;
        }
        else if (q.Claimed - q.Freed == _n) return Drop(measured, fifo: false);
        int slot = (int)(q.Claimed & _mask);
        q.ArrivalPs[slot] = Scheduler.Now;
        q.Measured[slot] = measured;
        q.Faulted[slot] = false;
        q.Claimed++;
        UpdateOccupancy(q);
        if (IsRx) Pump();
        else EnqueueJob(q, JobSend, slot);
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

    /// <summary>Issues what the NIC can: write-backs first (they free the rings), then buffer DMAs,
    /// then descriptor fetches, serving the queues round-robin.</summary>
    private void Pump()
    {
        while (_pendingWriteBacks.Count > 0)
        {
            long e = _pendingWriteBacks.Peek();
            var q = _queues[(int)(e >> QueueShift)];
            int k = (int)((e >> 32) & 0xFFFF);
            int slot = (int)(e & 0xFFFF_FFFF);
            if (!TryIssue(q.RingIova + (ulong)slot * NicOptions.DescriptorBytes, k * NicOptions.DescriptorBytes, true, q.Measured[slot], Tag(TagWriteBack, q, k, slot))) return;
            _pendingWriteBacks.Dequeue();
            Stats.WriteBacks++;
            Stats.DescriptorsWrittenBack += k;
        }
        int nq = _queues.Length;
        int first = _roundRobin;
        _roundRobin = _roundRobin + 1 == nq ? 0 : _roundRobin + 1;
        for (int i = 0; i < nq; i++)
            if (!PumpBuffers(_queues[(first + i) % nq])) return;
        for (int i = 0; i < nq; i++)
            if (!PumpFetches(_queues[(first + i) % nq])) return;
    }

    private static long Tag(long kind, Queue q, int count, int slot) => kind | ((long)q.Index << QueueShift) | ((long)count << 32) | (uint)slot;

    /// <summary>Buffer DMAs of packets whose descriptor is fetched, in ring order. False: out of tags.</summary>
    private bool PumpBuffers(Queue q)
    {
        long ready = Math.Min(q.FetchDone, IsRx ? q.Claimed : q.Posted);
        while (q.BufferIssued < ready)
        {
            if (_paced && _inFifo >= _fifo) return true; // the TX FIFO is full: read no further ahead of the wire
            int slot = (int)(q.BufferIssued & _mask);
            if (!TryIssue(q.SlotBuffer[slot], _packetBytes, IsRx, q.Measured[slot], Tag(TagBuffer, q, 0, slot))) return false;
            q.BufferIssued++;
            if (IsRx) _inFifo--;
            else if (_paced) _inFifo++;
            Stats.BufferDmas++;
        }
        return true;
    }

    /// <summary>Descriptor fetches for the queue. False: out of tags.</summary>
    private bool PumpFetches(Queue q)
    {
        while (true)
        {
            long unfetched = q.Posted - q.FetchIssued;
            long inCache = q.FetchIssued - q.BufferIssued;
            long room = _cacheEntries - inCache;
            if (unfetched <= 0 || room <= 0) return true;
            // RX prefetches in full batches; it fetches fewer only when a packet is waiting for a
            // descriptor or nothing is cached. TX fetches whatever the driver posted.
            bool urgent = !IsRx || q.Claimed > q.FetchIssued || inCache == 0;
            if (!urgent && (unfetched < _fetchBatch || room < _fetchBatch)) return true;
            int start = (int)(q.FetchIssued & _mask);
            int k = (int)Math.Min(Math.Min(_fetchBatch, unfetched), Math.Min(room, _n - start));
            if (!TryIssue(q.RingIova + (ulong)start * NicOptions.DescriptorBytes, k * NicOptions.DescriptorBytes, false, Measuring, Tag(TagFetch, q, k, start))) return false;
            q.FetchIssued += k;
            Stats.DescriptorFetches++;
            Stats.DescriptorsFetched += k;
        }
    }

    protected override void OnDmaDone(long tag, bool faulted)
    {
        if ((tag & TagKindMask) == TagStray) return; // a stray DMA after unmap: it is only there to probe the IOMMU
        if (faulted) Stats.DmaFaults++;
        var q = _queues[(int)((tag >> QueueShift) & 0xFFF)];
        int slot = (int)(tag & 0xFFFF_FFFF);
        switch (tag & TagKindMask)
        {
            case TagFetch:
            {
                int k = (int)((tag >> 32) & 0xFFFF);
                for (int i = 0; i < k; i++) q.Fetched[slot + i] = true;
                while (q.FetchDone < q.FetchIssued && q.Fetched[q.FetchDone & _mask])
                {
                    q.Fetched[q.FetchDone & _mask] = false;
                    q.FetchDone++;
                }
                break;
            }
            case TagBuffer:
                if (faulted) q.Faulted[slot] = true;
                q.BufferDone[slot] = true;
                while (q.BufferDoneContig < q.BufferIssued && q.BufferDone[q.BufferDoneContig & _mask])
                {
                    q.BufferDone[q.BufferDoneContig & _mask] = false;
                    if (_paced) _wireQueue.Enqueue(((long)q.Index << QueueShift) | (q.BufferDoneContig & _mask));
                    q.BufferDoneContig++;
                }
                if (_paced) StartWire();
                else QueueWriteBacks(q);
                break;
            case TagWriteBack:
            {
                int k = (int)((tag >> 32) & 0xFFFF);
                for (int i = 0; i < k; i++) PacketDone(q, slot + i);
                break;
            }
        }
        Pump();
    }

    /// <summary>Puts the packet at the head of the wire queue on the wire, unless one is being sent. A packet
    /// whose buffer read faulted is not sent (it takes no wire time) but keeps its place in the order.</summary>
    private void StartWire()
    {
        if (_wireBusy || _wireQueue.Count == 0) return;
        _wireBusy = true;
        long e = _wireQueue.Peek();
        bool faulted = _queues[(int)(e >> QueueShift)].Faulted[(int)(e & 0xFFFF_FFFF)];
        Schedule(faulted ? 0 : _wirePs, KindSent);
    }

    private void PacketSent()
    {
        long e = _wireQueue.Dequeue();
        _wireBusy = false;
        _inFifo--;
        var q = _queues[(int)(e >> QueueShift)];
        q.Sent++;
        QueueWriteBacks(q);
        StartWire();
        Pump();
    }

    /// <summary>Groups descriptors whose packet is done (RX and unpaced TX: its buffer DMA completed; paced TX: it
    /// has been sent) into write-backs, in ring order: full batches, and what is left once none of the queue's
    /// packets is still in progress.</summary>
    private void QueueWriteBacks(Queue q)
    {
        while (true)
        {
            long done = _paced ? q.Sent : q.BufferDoneContig;
            long ready = done - q.WriteBackQueued;
            if (ready <= 0 || (ready < _wbBatch && done < q.BufferIssued)) return;
            int start = (int)(q.WriteBackQueued & _mask);
            int k = (int)Math.Min(Math.Min(_wbBatch, ready), _n - start);
            _pendingWriteBacks.Enqueue(((long)q.Index << QueueShift) | ((long)k << 32) | (uint)start);
            q.WriteBackQueued += k;
        }
    }

    private void PacketDone(Queue q, int slot)
    {
        bool measured = q.Measured[slot];
        if (measured)
        {
            if (q.Faulted[slot]) Stats.Faulted++;
            else
            {
                Stats.Delivered++;
                Stats.DeliveredBytes += _packetBytes;
            }
            Stats.PacketLatency.Record(Scheduler.Now - q.ArrivalPs[slot]);
        }
        q.Done[slot] = true;
        // The driver sees written-back descriptors in ring order.
        while (q.DriverHead < q.BufferIssued && q.Done[q.DriverHead & _mask])
        {
            int s = (int)(q.DriverHead & _mask);
            q.Done[s] = false;
            q.DriverHead++;
            EnqueueJob(q, IsRx ? JobRefill : JobReclaim, s);
        }
        FinishOperation(measured);
    }

    // ---- the drivers (one CPU context per queue) -----------------------------------------

    private void EnqueueJob(Queue q, long kind, int slot)
    {
        q.Jobs.Enqueue(((long)q.Index << QueueShift) | (kind << 32) | (uint)slot);
        KickDriver(q);
    }

    private void KickDriver(Queue q)
    {
        if (q.DriverBusy || q.Jobs.Count == 0) return;
        q.DriverBusy = true;
        q.DriverBusyTime.Set(Scheduler.Now, 1);
        // Every job starts through the scheduler (after its CPU time), so DMA-API callbacks that
        // arrive synchronously never nest jobs.
        Schedule(_driverPs, KindDriverJob, q.Jobs.Dequeue());
    }

    private void JobDone(Queue q)
    {
        q.DriverBusy = false;
        q.DriverBusyTime.Set(Scheduler.Now, 0);
        KickDriver(q);
    }

    private Queue QueueOf(long job) => _queues[(int)((job >> QueueShift) & 0xFFF)];

    private static long KindOf(long job) => (job >> 32) & 0xFF;

    private void RunJob(long job)
    {
        var q = QueueOf(job);
        int slot = (int)(job & 0xFFFF_FFFF);
        switch (KindOf(job))
        {
            case JobInitPost:
                CallMap(q, job, _bufferBytes, Access.Write);
                break;
            case JobRefill:
                if (MapPerPacket) CallUnmap(q, job, q.SlotBuffer[slot], _bufferBytes);
                else
                {
                    Post(q, slot, NextPoolBuffer(q));
                    JobDone(q);
                }
                break;
            case JobSend:
                if (MapPerPacket) CallMap(q, job, _packetBytes, Access.Read);
                else
                {
                    Post(q, slot, NextPoolBuffer(q));
                    JobDone(q);
                }
                break;
            case JobReclaim:
                if (MapPerPacket) CallUnmap(q, job, q.SlotBuffer[slot], _packetBytes);
                else
                {
                    Free(q);
                    JobDone(q);
                }
                break;
        }
    }

    private void CallMap(Queue q, long job, int bytes, Access access)
    {
        q.ApiCallPs = Scheduler.Now;
        _dmaApi!.Map(Device, bytes, access, this, job, q.Index); // one driver CPU per queue
    }

    private void CallUnmap(Queue q, long job, ulong iova, int bytes)
    {
        q.ApiCallPs = Scheduler.Now;
        _dmaApi!.Unmap(Device, iova, bytes, this, job, q.Index);
    }

    void IDmaApiClient.OnMapped(long tag, ulong iova)
    {
        var q = QueueOf(tag);
        Stats.Maps++;
        Stats.MapLatency.Record(Scheduler.Now - q.ApiCallPs);
        Post(q, (int)(tag & 0xFFFF_FFFF), iova);
        JobDone(q);
    }

    void IDmaApiClient.OnUnmapped(long tag)
    {
        var q = QueueOf(tag);
        Stats.Unmaps++;
        // A late DMA to the buffer just unmapped (a buggy device, or the DMA-attack window of deferred
        // invalidation): strict unmap makes it fault; lazy may still translate it from the IOTLB.
        if (_nic.StrayDmaFraction > 0 && Random.NextDouble() < _nic.StrayDmaFraction
            && TryIssue(q.SlotBuffer[(int)(tag & 0xFFFF_FFFF)], 64, IsRx, false, TagStray | ((long)q.Index << QueueShift)))
            Stats.StrayDmas++;
        Stats.UnmapLatency.Record(Scheduler.Now - q.ApiCallPs);
        if (KindOf(tag) == JobRefill) CallMap(q, tag, _bufferBytes, Access.Write); // same job: now map the replacement
        else
        {
            Free(q);
            JobDone(q);
        }
    }

    private ulong NextPoolBuffer(Queue q)
    {
        ulong iova = q.PoolIova + (ulong)(q.PoolNext % _bufferCount) * (ulong)_bufferBytes;
        q.PoolNext++;
        return iova;
    }

    /// <summary>The driver writes a descriptor (CPU store, no DMA) and rings the doorbell.</summary>
    private void Post(Queue q, int slot, ulong bufferIova)
    {
        if (slot != (int)(q.Posted & _mask)) throw new InvalidOperationException($"{Device.Name} queue {q.Index}: descriptor {slot} posted out of ring order (tail {q.Posted & _mask})");
        q.SlotBuffer[slot] = bufferIova;
        q.Posted++;
        UpdateOccupancy(q);
        if (IsRx && q.Posted == _n && ++_queuesFilled == _queues.Length) StartArrivals();
        Pump();
    }

    private void Free(Queue q)
    {
        q.Freed++;
        UpdateOccupancy(q);
    }

    private void UpdateOccupancy(Queue q)
    {
        long occ = IsRx ? _n - (q.Posted - q.Claimed) : q.Claimed - q.Freed;
        long now = Scheduler.Now;
        q.Occupancy.Set(now, occ);
        q.Full.Set(now, occ >= _n ? 1 : 0);
    }

    // ---- statistics ---------------------------------------------------------------------

    protected override void ResetStats(long nowPs)
    {
        Stats.Reset();
        foreach (var q in _queues)
        {
            q.Occupancy.Reset(nowPs);
            q.Full.Reset(nowPs);
            q.DriverBusyTime.Reset(nowPs);
        }
    }

    /// <summary>
    /// <c>devices.&lt;name&gt;.nic.*</c>: packetsOffered, packetsDelivered (received for RX, sent for
    /// TX), packetsDropped, droppedRingFull, droppedFifoFull, packetsFaulted, dropRate,
    /// throughputGbps (delivered packet bytes), mpps, latencyNs.{mean,p50,p90,p99,p999,max}
    /// (arrival → write-back complete), queues, ringSize, ringOccupancyMean (per queue, averaged
    /// over queues), ringOccupancyMax (largest of any queue), ringFullFraction (share of time a
    /// queue had no free descriptor, averaged over queues), descriptorFetches, descriptorsPerFetch,
    /// bufferDmas, writeBacks, dmaFaults, bufferWindowBytes (recycle), maps, unmaps,
    /// mapLatencyNs.mean, unmapLatencyNs.mean, driverBusyFraction (averaged over the queues' CPUs).
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
            busy += q.DriverBusyTime.Mean(now);
            occupancyMax = Math.Max(occupancyMax, q.Occupancy.Max);
        }
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
        return list;
    }

    /// <summary>One queue: its ring in memory, the NIC's and the driver's state of it.</summary>
    private sealed class Queue(int index, int ringSize, ulong ringIova, ulong poolIova, bool rx)
    {
        public readonly int Index = index;
        public readonly ulong RingIova = ringIova;
        public readonly ulong PoolIova = poolIova;
        public readonly ulong[] SlotBuffer = new ulong[ringSize];
        public readonly long[] ArrivalPs = new long[ringSize];
        public readonly bool[] Measured = new bool[ringSize];
        public readonly bool[] Faulted = new bool[ringSize];
        public readonly bool[] Fetched = new bool[ringSize];
        public readonly bool[] Done = new bool[ringSize];
        public readonly bool[] BufferDone = new bool[ringSize];
        public readonly Queue<long> Jobs = new(2 * ringSize);

        // Monotonic ring counters (slot = counter & mask).
        public long Posted;       // descriptors handed to the NIC by the driver
        public long Claimed;      // RX: descriptors a received packet took; TX: slots the driver took for a packet
        public long FetchIssued;  // descriptors whose fetch was issued
        public long FetchDone;    // descriptors fetched, contiguous from the start
        public long BufferIssued; // buffer DMAs issued (ring order)
        public long BufferDoneContig; // buffer DMAs completed, contiguous from the start
        public long Sent;         // TX with a line rate: packets that have left through the port (ring order)
        public long WriteBackQueued;  // descriptors covered by queued or issued write-backs
        public long DriverHead;   // written-back descriptors the driver has taken up (ring order)
        public long Freed;        // TX: slots released
        public long PoolNext;     // recycle: next pool buffer

        public bool DriverBusy;
        public long ApiCallPs;
        public readonly TimeAverage Occupancy = Initial(rx ? ringSize : 0);
        public readonly TimeAverage Full = new();
        public readonly TimeAverage DriverBusyTime = new();

        private static TimeAverage Initial(long value)
        {
            var t = new TimeAverage();
            t.Set(0, value);
            return t;
        }
    }
}
