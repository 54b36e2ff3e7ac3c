using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Workloads.DeviceModels;

namespace IommuSim.Workloads.Nic;

/// <summary>
/// The NIC's driver: one serial CPU context per queue (a NAPI poll loop on its own core) that
/// handles written-back descriptors in ring order. With <c>recycle</c> buffers come round-robin from
/// a per-queue pool mapped once. With <c>map-per-packet</c> every buffer goes through the DMA API:
/// RX refill = unmap the received buffer, map a new one, re-post the descriptor; TX = map before
/// posting, unmap when reclaiming the sent descriptor. A descriptor is re-posted only once its map
/// completed, so slow (strict) unmaps starve the ring.
/// </summary>
internal sealed class NicDriver : IDriverJobs, IDmaApiClient
{
    // Jobs (event argument and DMA-API tag): queue (48–59) | kind (32–39) | slot (0–31).
    private const long JobInitPost = 0;  // RX, map-per-packet: the first map of a ring slot
    private const long JobRefill = 1;    // RX: give the NIC a buffer for a slot the driver consumed
    private const long JobSend = 2;      // TX: post a packet the stack handed over
    private const long JobReclaim = 3;   // TX: release a sent packet's slot
    private const int QueueShift = NicController.QueueShift;

    private readonly NicWorkload _model;
    private readonly Scheduler _scheduler;
    private readonly NicController _controller;
    private readonly NicQueue[] _queues;
    private readonly DriverCpu[] _cpus;
    private readonly NicStats _stats;
    private readonly SimRandom _random;
    private readonly DmaEngine _device;
    private readonly bool _rx;
    private readonly bool _mapPerPacket;
    private readonly int _n;
    private readonly int _mask;
    private readonly int _packetBytes;
    private readonly int _bufferBytes;
    private readonly int _bufferCount;
    private readonly double _strayDmaFraction;
    private readonly int _batch; // RX map-per-packet: ring buffers per DMA-API map/unmap (nic.iovaBatch)
    private int _queuesFilled; // RX map-per-packet: queues whose initial fill is complete

    public NicDriver(NicWorkload model, Scheduler scheduler, NicController controller, NicQueue[] queues, NicOptions nic,
        int packetBytes, bool rx, NicStats stats, SimRandom random, DmaEngine device)
    {
        _model = model;
        _scheduler = scheduler;
        _controller = controller;
        _queues = queues;
        _stats = stats;
        _random = random;
        _device = device;
        _rx = rx;
        _mapPerPacket = nic.BufferPolicy == "map-per-packet";
        _n = nic.RingSize;
        _mask = _n - 1;
        _packetBytes = packetBytes;
        _bufferBytes = (int)nic.BufferBytes.Bytes;
        _bufferCount = nic.EffectiveBufferCount;
        _strayDmaFraction = nic.StrayDmaFraction;
        _batch = rx && _mapPerPacket ? nic.IovaBatch : 1;
        long jobPs = SimTime.FromNs(nic.DriverNsPerPacket);
        _cpus = new DriverCpu[queues.Length];
        for (int q = 0; q < queues.Length; q++) _cpus[q] = new DriverCpu(scheduler, this, jobPs, 2 * _n, q);
    }

    /// <summary>The DMA API (map-per-packet); set when the run starts.</summary>
    public IDmaApi? Api { get; set; }

    /// <summary>The queues' CPUs (for their busy time).</summary>
    public IReadOnlyList<DriverCpu> Cpus => _cpus;

    /// <summary>RX at start: give the NIC a buffer for every descriptor (map-per-packet: through the DMA
    /// API, and the link comes up when every ring is full; recycle: from the pools, at once).</summary>
    public void FillRings()
    {
        foreach (var q in _queues)
        {
            if (_mapPerPacket)
            {
                for (int i = 0; i < _n; i += _batch) Enqueue(q, JobInitPost, i);
                continue;
            }
            for (int i = 0; i < _n; i++) q.SlotBuffer[i] = NextPoolBuffer(q);
            q.Posted = _n;
            q.UpdateOccupancy(_scheduler.Now);
        }
    }

    /// <summary>TX: the stack handed over a packet in <paramref name="slot"/>.</summary>
    public void Send(NicQueue q, int slot) => Enqueue(q, JobSend, slot);

    /// <summary>The NIC wrote back <paramref name="slot"/>'s descriptor; the driver takes descriptors up in ring order.</summary>
    public void DescriptorWrittenBack(NicQueue q, int slot)
    {
        q.Done[slot] = true;
        while (q.DriverHead < q.BufferIssued && q.Done[q.DriverHead & _mask])
        {
            int s = (int)(q.DriverHead & _mask);
            q.Done[s] = false;
            q.DriverHead++;
            // With IOVA batches a group of descriptors is refilled (unmapped, mapped, posted) once its last one is in.
            if (_batch == 1) Enqueue(q, _rx ? JobRefill : JobReclaim, s);
            else if ((s & (_batch - 1)) == _batch - 1) Enqueue(q, JobRefill, s - (_batch - 1));
        }
    }

    private void Enqueue(NicQueue q, long kind, int slot)
        => _cpus[q.Index].Enqueue(((long)q.Index << QueueShift) | (kind << 32) | (uint)slot);

    private NicQueue QueueOf(long job) => _queues[(int)((job >> QueueShift) & 0xFFF)];

    private static long KindOf(long job) => (job >> 32) & 0xFF;

    void IDriverJobs.RunJob(DriverCpu cpu, long job)
    {
        var q = QueueOf(job);
        int slot = (int)(job & 0xFFFF_FFFF);
        switch (KindOf(job))
        {
            case JobInitPost:
                CallMap(q, job, _bufferBytes, Access.Write);
                break;
            case JobRefill:
                if (_batch > 1)
                {
                    _cpus[q.Index].BeginApiCall();
                    Api!.UnmapBatch(_device, q.SlotBuffer[slot], _batch, _bufferBytes, this, job, q.Index);
                }
                else if (_mapPerPacket) CallUnmap(q, job, q.SlotBuffer[slot], _bufferBytes);
                else
                {
                    Post(q, slot, NextPoolBuffer(q));
                    cpu.JobDone();
                }
                break;
            case JobSend:
                if (_mapPerPacket) CallMap(q, job, _packetBytes, Access.Read);
                else
                {
                    Post(q, slot, NextPoolBuffer(q));
                    cpu.JobDone();
                }
                break;
            case JobReclaim:
                if (_mapPerPacket) CallUnmap(q, job, q.SlotBuffer[slot], _packetBytes);
                else
                {
                    Free(q);
                    cpu.JobDone();
                }
                break;
        }
    }

    private void CallMap(NicQueue q, long job, int bytes, Access access)
    {
        _cpus[q.Index].BeginApiCall();
        if (_batch > 1) Api!.MapBatch(_device, _batch, bytes, access, this, job, q.Index); // RX buffers only
        else Api!.Map(_device, bytes, access, this, job, q.Index); // one driver CPU per queue
    }

    private void CallUnmap(NicQueue q, long job, ulong iova, int bytes)
    {
        _cpus[q.Index].BeginApiCall();
        Api!.Unmap(_device, iova, bytes, this, job, q.Index);
    }

    void IDmaApiClient.OnMapped(long tag, ulong iova)
    {
        var q = QueueOf(tag);
        var cpu = _cpus[q.Index];
        _stats.Maps++;
        _stats.MapLatency.Record(cpu.ApiCallElapsedPs);
        int slot = (int)(tag & 0xFFFF_FFFF);
        // A batch: consecutive descriptors get consecutive buffers of one contiguous IOVA range.
        for (int k = 0; k < _batch; k++) Post(q, slot + k, iova + (ulong)k * (ulong)IDmaApi.BatchStride(_bufferBytes));
        cpu.JobDone();
    }

    void IDmaApiClient.OnUnmapped(long tag)
    {
        var q = QueueOf(tag);
        var cpu = _cpus[q.Index];
        _stats.Unmaps++;
        // A late DMA to the buffer just unmapped (a buggy device, or the DMA-attack window of deferred
        // invalidation): strict unmap makes it fault; lazy may still translate it from the IOTLB.
        if (_strayDmaFraction > 0 && _random.NextDouble() < _strayDmaFraction
            && _model.TryIssue(q.SlotBuffer[(int)(tag & 0xFFFF_FFFF)], 64, _rx, false, NicController.TagStray | ((long)q.Index << QueueShift)))
            _stats.StrayDmas++;
        _stats.UnmapLatency.Record(cpu.ApiCallElapsedPs);
        if (KindOf(tag) == JobRefill) CallMap(q, tag, _bufferBytes, Access.Write); // same job: now map the replacement
        else
        {
            Free(q);
            cpu.JobDone();
        }
    }

    private ulong NextPoolBuffer(NicQueue q)
    {
        ulong iova = q.PoolIova + (ulong)(q.PoolNext % _bufferCount) * (ulong)_bufferBytes;
        q.PoolNext++;
        return iova;
    }

    /// <summary>The driver writes a descriptor (CPU store, no DMA) and rings the doorbell.</summary>
    private void Post(NicQueue q, int slot, ulong bufferIova)
    {
        if (slot != (int)(q.Posted & _mask)) throw new InvalidOperationException($"{_device.Name} queue {q.Index}: descriptor {slot} posted out of ring order (tail {q.Posted & _mask})");
        q.SlotBuffer[slot] = bufferIova;
        q.Posted++;
        q.UpdateOccupancy(_scheduler.Now);
        if (_rx && q.Posted == _n && ++_queuesFilled == _queues.Length) _model.StartArrivals();
        _controller.Pump();
    }

    private void Free(NicQueue q)
    {
        q.Freed++;
        q.UpdateOccupancy(_scheduler.Now);
    }
}
