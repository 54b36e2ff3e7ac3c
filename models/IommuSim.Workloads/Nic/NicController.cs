using IommuSim.Engine.Scheduling;

namespace IommuSim.Workloads.Nic;

/// <summary>
/// The NIC's side of its rings: descriptor fetches (a batch per DMA read, into a per-queue on-chip
/// cache), buffer DMAs (RX: write the packet; TX: read it), descriptor write-backs in ring order and,
/// with a line rate on TX, the port that sends one packet at a time. It serves the queues
/// round-robin and issues write-backs first (they free the rings), then buffer DMAs, then fetches.
/// </summary>
internal sealed class NicController
{
    // DMA tags: kind (bits 60–62) | queue (48–59) | descriptor count (32–47) | slot (0–31).
    public const long TagKindMask = 7L << 60;
    public const long TagFetch = 1L << 60;
    public const long TagBuffer = 2L << 60;
    public const long TagWriteBack = 3L << 60;
    /// <summary>A stray DMA the driver model issues after an unmap (only there to probe the IOMMU).</summary>
    public const long TagStray = 4L << 60;
    public const int QueueShift = 48;
    /// <summary>Set on the DMA tags of the transmit stream that rides on a receive workload (nic.txFraction).</summary>
    public const long TagTxStream = long.MinValue;

    private readonly NicWorkload _model;
    private readonly Scheduler _scheduler;
    private readonly NicQueue[] _queues;
    private readonly NicStats _stats;
    private readonly bool _rx;
    private readonly int _n;
    private readonly int _mask;
    private readonly int _packetBytes;
    private readonly int _fetchBatch;
    private readonly int _cacheEntries;
    private readonly int _fifo;
    private readonly int _wbBatch;
    private readonly bool _paced;              // TX with a line rate: packets leave through the port one at a time
    private readonly long _wirePs;             // one packet's time on the wire
    private readonly Queue<long> _pendingWriteBacks; // queue << 48 | count << 32 | first slot
    private readonly Queue<long> _wireQueue;   // TX, paced: packets read and waiting for the wire: queue << 48 | slot
    private bool _wireBusy;
    private int _inFifo;      // RX: packets claimed whose buffer DMA is not yet issued; paced TX: read, not yet sent (all queues)
    private int _roundRobin;
    private readonly long _tagBase;    // TagTxStream for the transmit stream, else 0
    private readonly bool _isTxStream; // its packets do not count against the run's request budget

    public NicController(NicWorkload model, Scheduler scheduler, NicQueue[] queues, NicOptions nic, int packetBytes,
        bool rx, NicStats stats, bool txStream = false)
    {
        _isTxStream = txStream;
        _tagBase = txStream ? TagTxStream : 0;
        _model = model;
        _scheduler = scheduler;
        _queues = queues;
        _stats = stats;
        _rx = rx;
        _n = nic.RingSize;
        _mask = _n - 1;
        _packetBytes = packetBytes;
        _fetchBatch = nic.DescriptorFetchBatch;
        _wbBatch = nic.WriteBackBatch;
        _cacheEntries = nic.DescriptorCacheEntries;
        _fifo = nic.FifoPackets;
        _paced = !rx && nic.LineRateGbps > 0;
        _wirePs = nic.LineRateGbps > 0 ? nic.WirePs(packetBytes) : 0;
        _pendingWriteBacks = new Queue<long>(_n);
        _wireQueue = new Queue<long>(_paced ? _fifo : 0);
    }

    /// <summary>The driver-side model that takes up written-back descriptors.</summary>
    public NicDriver Driver { get; set; } = null!;

    /// <summary>RX: room in the NIC's packet FIFO for one more received packet (taken if true).</summary>
    public bool TryAdmit()
    {
        if (_inFifo >= _fifo) return false;
        _inFifo++;
        return true;
    }

    private long Tag(long kind, NicQueue q, int count, int slot) => _tagBase | kind | ((long)q.Index << QueueShift) | ((long)count << 32) | (uint)slot;

    /// <summary>Issues what the NIC can: write-backs first, then buffer DMAs, then descriptor fetches.</summary>
    public void Pump()
    {
        while (_pendingWriteBacks.Count > 0)
        {
            long e = _pendingWriteBacks.Peek();
            var q = _queues[(int)(e >> QueueShift)];
            int k = (int)((e >> 32) & 0xFFFF);
            int slot = (int)(e & 0xFFFF_FFFF);
            if (!_model.TryIssue(q.RingIova + (ulong)slot * NicOptions.DescriptorBytes, k * NicOptions.DescriptorBytes, true, q.Measured[slot], Tag(TagWriteBack, q, k, slot))) return;
            _pendingWriteBacks.Dequeue();
            _stats.WriteBacks++;
            _stats.DescriptorsWrittenBack += k;
        }
        int nq = _queues.Length;
        int first = _roundRobin;
        _roundRobin = _roundRobin + 1 == nq ? 0 : _roundRobin + 1;
        for (int i = 0; i < nq; i++)
            if (!PumpBuffers(_queues[(first + i) % nq])) return;
        for (int i = 0; i < nq; i++)
            if (!PumpFetches(_queues[(first + i) % nq])) return;
    }

    /// <summary>Buffer DMAs of packets whose descriptor is fetched, in ring order. False: out of tags.</summary>
    private bool PumpBuffers(NicQueue q)
    {
        long ready = Math.Min(q.FetchDone, _rx ? q.Claimed : q.Posted);
        while (q.BufferIssued < ready)
        {
            if (_paced && _inFifo >= _fifo) return true; // the TX FIFO is full: read no further ahead of the wire
            int slot = (int)(q.BufferIssued & _mask);
            if (!_model.TryIssue(q.SlotBuffer[slot], _packetBytes, _rx, q.Measured[slot], Tag(TagBuffer, q, 0, slot))) return false;
            q.BufferIssued++;
            if (_rx) _inFifo--;
            else if (_paced) _inFifo++;
            _stats.BufferDmas++;
        }
        return true;
    }

    /// <summary>Descriptor fetches for the queue. False: out of tags.</summary>
    private bool PumpFetches(NicQueue q)
    {
        while (true)
        {
            long unfetched = q.Posted - q.FetchIssued;
            long inCache = q.FetchIssued - q.BufferIssued;
            long room = _cacheEntries - inCache;
            if (unfetched <= 0 || room <= 0) return true;
            // RX prefetches in full batches; it fetches fewer only when a packet is waiting for a
            // descriptor or nothing is cached. TX fetches whatever the driver posted.
            bool urgent = !_rx || q.Claimed > q.FetchIssued || inCache == 0;
            if (!urgent && (unfetched < _fetchBatch || room < _fetchBatch)) return true;
            int start = (int)(q.FetchIssued & _mask);
            int k = (int)Math.Min(Math.Min(_fetchBatch, unfetched), Math.Min(room, _n - start));
            if (!_model.TryIssue(q.RingIova + (ulong)start * NicOptions.DescriptorBytes, k * NicOptions.DescriptorBytes, false, _model.Measuring, Tag(TagFetch, q, k, start))) return false;
            q.FetchIssued += k;
            _stats.DescriptorFetches++;
            _stats.DescriptorsFetched += k;
        }
    }

    public void OnDmaDone(long tag, bool faulted)
    {
        if ((tag & TagKindMask) == TagStray) return;
        if (faulted) _stats.DmaFaults++;
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
        _model.Schedule(faulted ? 0 : _wirePs, _isTxStream ? NicWorkload.KindTxStreamSent : NicWorkload.KindSent);
    }

    /// <summary>Paced TX: the packet at the head of the wire queue has left through the port.</summary>
    public void PacketSent()
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
    private void QueueWriteBacks(NicQueue q)
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

    /// <summary>A descriptor's write-back completed: its packet is done.</summary>
    private void PacketDone(NicQueue q, int slot)
    {
        bool measured = q.Measured[slot];
        if (measured)
        {
            if (q.Faulted[slot]) _stats.Faulted++;
            else
            {
                _stats.Delivered++;
                _stats.DeliveredBytes += _packetBytes;
            }
            _stats.PacketLatency.Record(_scheduler.Now - q.ArrivalPs[slot]);
        }
        Driver.DescriptorWrittenBack(q, slot);
        if (_isTxStream) return;
        if (_rx && !q.Faulted[slot]) _model.RxPacketDone(q.Index);
        _model.FinishOperation(measured);
    }
}
