using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// The run-time DMA-mapping path (dma_map_single / dma_unmap_single, or a VFIO program's
/// IOAS_MAP / IOAS_UNMAP per buffer) in simulated time, per device, on one driver CPU per device:
/// <list type="bullet">
/// <item><c>strict</c>: unmap clears the PTEs, queues an IOTLB (+ device-TLB) invalidation and a
/// wait, and the CPU spins until the hardware finished them — no DMA can use the old mapping
/// after the call returns.</item>
/// <item><c>lazy</c>: unmap clears the PTEs and puts the IOVA on a flush queue; a domain-wide
/// invalidation runs when the queue fills (on the unmapping CPU) or when the domain's flush timer fires.
/// Until then the IOTLB may still translate the old IOVA: such hits count in
/// <c>security.staleTranslationsUsed</c>. IOVAs are reused only after their flush.</item>
/// <item><c>none</c>: buffers are mapped once on first use and recycled; unmap only returns the
/// buffer to the driver's pool.</item>
/// </list>
/// The page-table edits and the invalidations come from the mapping target (the kernel's domain, the
/// program's IOAS, the guest's table: <see cref="MappingTargets"/>), gathered in the target's
/// <see cref="IotlbGather"/> whatever the IOMMU's command format: a gather is submitted asynchronously and a
/// driver CPU that must wait is resumed by its completion callback in simulated time. The
/// <see cref="IHardwarePort"/> gives the scheduler only.
/// </summary>
public sealed partial class KernelDmaApi : IDmaApi, IResettable
{
    private readonly IHardwarePort _port;
    private readonly DmaApiCosts _costs;
    /// <summary>Per-CPU IOVA windows and flush queues, as Linux keeps per-CPU rcaches and flush queues.</summary>
    public const int MaxCpus = 64;

    private readonly Dictionary<(DmaEngine Device, int Cpu), DeviceMapper> _mappers = [];
    private readonly Dictionary<DmaEngine, IMappingTarget> _targets = [];

    public KernelDmaApi(IHardwarePort port, DmaApiCosts costs)
    {
        if (costs.Mode is not ("strict" or "lazy" or "none")) throw new ArgumentException($"unknown DMA API mode '{costs.Mode}'");
        _port = port;
        _costs = costs;
    }

    /// <summary>Over a platform through a port of its own (the same hardware the kernel model's port reaches).</summary>
    public KernelDmaApi(Platform platform, DmaApiCosts costs) : this(new PlatformPort(platform), costs) { }

    public string Mode => _costs.Mode;
    public DmaApiStats Stats { get; } = new();
    /// <summary>Hooks on the driver CPUs (tracing); null when nobody listens.</summary>
    public SoftwareObserver? Observer { get; set; }

    public void Register(DmaEngine device, IMappingTarget target) => _targets[device] = target;

    public bool IsRegistered(DmaEngine device) => _targets.ContainsKey(device);

    public void Map(DmaEngine device, int bytes, Access access, IDmaApiClient client, long tag, int cpu = 0)
        => Mapper(device, cpu).Enqueue(OpKind.Map, 0, bytes, access, client, tag);

    public void Unmap(DmaEngine device, ulong iova, int bytes, IDmaApiClient client, long tag, int cpu = 0)
        => Mapper(device, cpu).Enqueue(OpKind.Unmap, iova, bytes, Access.None, client, tag);

    /// <summary>
    /// Maps [iova, iova + bytes) at an IOVA the caller chose: a replayed kernel trace, whose kernel's
    /// IOVA allocator already chose it. Such IOVAs never enter this API's allocator, on unmap or flush.
    /// Costs, traps and (on unmap) invalidations are those of <see cref="Map"/> and <see cref="Unmap"/>.
    /// A mapping larger than the buffer pool reuses the pool's memory (only the translation is modelled).
    /// </summary>
    public void MapAt(DmaEngine device, ulong iova, int bytes, Access access, IDmaApiClient client, long tag, int cpu = 0)
    {
        if (Mode == "none") throw new InvalidOperationException("mapping at a given IOVA needs DMA API mode strict or lazy");
        Mapper(device, cpu).Enqueue(OpKind.Map, iova, bytes, access, client, tag, fixedIova: true);
    }

    /// <summary>Unmaps a range mapped with <see cref="MapAt"/> (or any part of one, as iommu_unmap may).</summary>
    public void UnmapAt(DmaEngine device, ulong iova, int bytes, IDmaApiClient client, long tag, int cpu = 0)
    {
        if (Mode == "none") throw new InvalidOperationException("unmapping at a given IOVA needs DMA API mode strict or lazy");
        Mapper(device, cpu).Enqueue(OpKind.Unmap, iova, bytes, Access.None, client, tag, fixedIova: true);
    }

    private DeviceMapper Mapper(DmaEngine device, int cpu)
    {
        if (_mappers.TryGetValue((device, cpu), out var m)) return m;
        if (!_targets.TryGetValue(device, out var target))
            throw new InvalidOperationException($"device {device.Name} has no DMA-API mapping target (is it attached?)");
        if (cpu is < 0 or >= MaxCpus) throw new ArgumentOutOfRangeException(nameof(cpu), cpu, $"driver CPUs are 0..{MaxCpus - 1}");
        m = new DeviceMapper(this, device, target, cpu);
        _mappers[(device, cpu)] = m;
        return m;
    }

    public void Reset() => Stats.Reset();

    private enum OpKind : byte { Map, Unmap }

    private enum Phase : byte { Cost, Submit, Flush }

    private sealed class Op
    {
        public OpKind Kind;
        public Phase Phase;
        public ulong Iova;
        public int Bytes;
        public Access Access;
        public IDmaApiClient Client = null!;
        public long Tag;
        public long StartPs;
        public bool FixedIova;
        public Op? Next;
    }

    /// <summary>One device's driver CPU: runs its DMA-API calls one at a time.</summary>
    private sealed class DeviceMapper : IEventHandler, IInvalidationWaiter
    {
        private const int KindStep = 1;

        private readonly KernelDmaApi _api;
        private readonly DmaEngine _device;
        private readonly int _cpu;
        private long _waitStartPs;
        private readonly IMappingTarget _t;
        private readonly IovaAllocator _iovas;
        private readonly Stack<Op> _pool = new();
        // The gathers (iommu_iotlb_gather), owned by the target so their format is the IOMMU's: a lazy flush's,
        // a strict unmap's (gathered at the unmap and submitted after the submit cost), and a map's.
        private readonly IotlbGather _descs;
        private readonly IotlbGather _rangeFlush;
        private readonly IotlbGather _mapFlush;
        // Table pages unmaps took out, kept until the flush that covers them has completed (the gather's freelist):
        // a strict unmap's, those of lazy unmaps still in the flush queue, and those of the flush in flight.
        private readonly List<ulong> _rangeFreed = [];
        // The CPU's flush queue (struct iova_fq): each entry, and each table page its unmap freed, carries the domain's
        // flush start count when it was queued; it is freed once a flush that started after it has finished.
        private readonly Queue<(ulong Iova, ulong Bytes, bool Fixed, long Counter)> _flushQueue = new();
        private readonly Queue<(ulong Page, long Counter)> _queueFreed = new();
        private readonly List<ulong> _unmapFreed = [];
        private readonly List<ulong> _pagesToPut = [];
        private readonly Stack<(ulong Iova, ulong Bytes)> _recycled = new();
        private Op? _head, _tail;
        private bool _busy;
        private readonly DomainFlushTimer _flushTimer;
        private ulong _bufferCursor;
        private Op? _waitingOp;
        private bool _waitingFlush;

        public DeviceMapper(KernelDmaApi api, DmaEngine device, IMappingTarget target, int cpu)
        {
            _api = api;
            _device = device;
            _cpu = cpu;
            _t = target;
            _descs = target.CreateGather();
            _rangeFlush = target.CreateGather();
            _mapFlush = target.CreateGather();
            // One IOVA allocator per domain, shared by the CPUs (each with its own rcache magazines); each CPU
            // takes buffers from its own part of the buffer pool.
            _iovas = api.IovaDomain(target);
            _flushTimer = api.FlushTimer(target);
            _flushTimer.Add(this);
            _bufferSlice = Math.Max(0x1000UL, target.BufferBytes / MaxCpus & ~0xFFFUL);
            _bufferBase = target.IdentityMapped ? target.BufferBase + (ulong)cpu * _bufferSlice % target.BufferBytes : target.BufferBase;
            if (!target.IdentityMapped) _bufferSlice = target.BufferBytes;
        }

        private readonly ulong _bufferBase;
        private ulong _bufferSlice;

        private Engine.Scheduling.Scheduler Sched => _api._port.Scheduler;
        private DmaApiCosts C => _api._costs;

        public void Enqueue(OpKind kind, ulong iova, int bytes, Access access, IDmaApiClient client, long tag, bool fixedIova = false)
        {
            var op = _pool.Count > 0 ? _pool.Pop() : new Op();
            op.Kind = kind; op.Iova = iova; op.Bytes = bytes; op.Access = access; op.Client = client; op.Tag = tag; op.FixedIova = fixedIova;
            op.Phase = Phase.Cost; op.Next = null;
            if (_tail is null) _head = _tail = op; else { _tail.Next = op; _tail = op; }
            if (!_busy) StartNext();
        }

        private void StartNext()
        {
            if (_head is null) { _busy = false; return; }
            _busy = true;
            var op = _head;
            op.StartPs = Sched.Now;
            long cost = C.Mode == "none" ? 0
                : op.Kind == OpKind.Map ? C.MapPs + _t.MapOverheadPs
                : C.UnmapPs + _t.UnmapOverheadPs;
            if (_api.Observer is { } o && cost > 0)
            {
                bool map = op.Kind == OpKind.Map;
                Phases(o, map ? DmaApiPhase.MapWork : DmaApiPhase.UnmapWork, map ? C.MapPs : C.UnmapPs,
                    map ? DmaApiPhase.MapOverhead : DmaApiPhase.UnmapOverhead, map ? _t.MapOverheadPs : _t.UnmapOverheadPs);
            }
            Sched.ScheduleIn(cost, this, KindStep, 0, op);
        }

        public void OnEvent(int kind, long arg, object? payload)
        {
            var op = (Op)payload!;
            if (op.Kind == OpKind.Map) { DoMap(op); return; }
            if (op.Phase == Phase.Cost) DoUnmap(op);
            else if (op.Phase == Phase.Submit) SubmitRangeInvalidation(op);
            else SubmitFlush();
        }

        private void DoMap(Op op)
        {
            ulong bytes = ((ulong)op.Bytes + 0xFFF) & ~0xFFFUL;
            ulong iova;
            if (C.Mode == "none" && _recycled.Count > 0)
            {
                iova = _recycled.Pop().Iova;
            }
            else if (op.FixedIova && !_t.IdentityMapped)
            {
                iova = op.Iova;
                var access = op.Access == Access.None ? Access.ReadWrite : op.Access | Access.Read;
                for (ulong done = 0; done < bytes;)
                {
                    ulong chunk = Math.Min(bytes - done, _bufferSlice);
                    if (_bufferCursor + chunk > _bufferSlice) _bufferCursor = 0;
                    MapChunk(iova + done, _bufferBase + _bufferCursor, chunk, access);
                    _bufferCursor += chunk;
                    done += chunk;
                }
            }
            else
            {
                if (_bufferCursor + bytes > _bufferSlice) _bufferCursor = 0;
                ulong output = _bufferBase + _bufferCursor;
                _bufferCursor += bytes;
                iova = _t.IdentityMapped ? output : _iovas.Allocate(bytes, _cpu);
                // Recycled buffers serve either direction (DMA_BIDIRECTIONAL); per-call ones get what was asked.
                var access = C.Mode == "none" || op.Access == Access.None ? Access.ReadWrite : op.Access | Access.Read;
                MapChunk(iova, output, bytes, access);
            }
            _api.Stats.Maps++;
            Finish(op, mapped: iova);
        }

        private void MapChunk(ulong iova, ulong output, ulong bytes, Access access)
        {
            _mapFlush.Clear();
            _t.Map(iova, output, bytes, access, _mapFlush);
            if (_mapFlush.Count == 0) return;
            // A large leaf replaced a table the walk caches may hold (__domain_mapping's flush): nobody waits for it.
            _api.Stats.InvalidationDescriptors += _mapFlush.Count + 1;
            _mapFlush.Submit(null, 0);
        }

        private void DoUnmap(Op op)
        {
            ulong bytes = ((ulong)op.Bytes + 0xFFF) & ~0xFFFUL;
            _api.Stats.Unmaps++;
            switch (C.Mode)
            {
                case "none":
                    _recycled.Push((op.Iova, bytes));
                    Finish(op);
                    return;
                case "strict" or "lazy" when _t.IdentityMapped:
                    Finish(op); // nothing mapped, nothing to invalidate
                    return;
                case "strict":
                    _rangeFlush.Clear();
                    _t.Unmap(op.Iova, bytes, _rangeFlush, _rangeFreed);
                    op.Phase = Phase.Submit;
                    if (_api.Observer is { } o1) Phases(o1, DmaApiPhase.InvalidationSubmit, C.InvalidationSubmitPs, DmaApiPhase.InvalidationOverhead, _t.InvalidateOverheadPs);
                    Sched.ScheduleIn(C.InvalidationSubmitPs + _t.InvalidateOverheadPs, this, KindStep, 0, op);
                    return;
                default: // lazy: queue_iova
                    FreeFlushed();
                    _t.Unmap(op.Iova, bytes, null, _unmapFreed);
                    _descs.NoteUnmappedPendingInvalidation(_t.DomainId, op.Iova, bytes);
                    long counter = _flushTimer.FlushStartCount;
                    foreach (ulong page in _unmapFreed) _queueFreed.Enqueue((page, counter));
                    _unmapFreed.Clear();
                    _flushQueue.Enqueue((op.Iova, bytes, op.FixedIova, counter));
                    if (_flushQueue.Count >= C.FlushQueueEntries && !_waitingFlush)
                    {
                        // Queue full: this CPU flushes now and waits for it.
                        op.Phase = Phase.Flush;
                        if (_api.Observer is { } o2) Phases(o2, DmaApiPhase.InvalidationSubmit, C.InvalidationSubmitPs, DmaApiPhase.InvalidationOverhead, _t.InvalidateOverheadPs);
                        Sched.ScheduleIn(C.InvalidationSubmitPs + _t.InvalidateOverheadPs, this, KindStep, 0, op);
                        return;
                    }
                    _flushTimer.Arm();
                    Finish(op);
                    return;
            }
        }

        /// <summary>Reports the two consecutive parts of a cost the CPU is about to spend (work, then the path's overhead).</summary>
        private void Phases(SoftwareObserver o, DmaApiPhase work, long workPs, DmaApiPhase overhead, long overheadPs)
        {
            long now = Sched.Now;
            if (workPs > 0) o.OnDmaApiPhase(_device, _cpu, work, now, now + workPs);
            if (overheadPs > 0) o.OnDmaApiPhase(_device, _cpu, overhead, now + workPs, now + workPs + overheadPs);
        }

        private void SubmitRangeInvalidation(Op op)
        {
            ulong bytes = ((ulong)op.Bytes + 0xFFF) & ~0xFFFUL;
            if (!op.FixedIova) _iovas.Free(op.Iova, bytes, _cpu);
            _waitingOp = op;
            Wait(_rangeFlush);
        }

        /// <summary>
        /// fq_ring_free: entries (and their table pages) queued before the last finished domain flush, whichever CPU or
        /// timer ran it, go back to the IOVA and page allocators.
        /// </summary>
        public void FreeFlushed()
        {
            long finished = _flushTimer.FlushFinishCount;
            while (_flushQueue.Count > 0 && _flushQueue.Peek().Counter < finished)
            {
                var (iova, bytes, isFixed, _) = _flushQueue.Dequeue();
                if (!isFixed) _iovas.Free(iova, bytes, _cpu);
            }
            while (_queueFreed.Count > 0 && _queueFreed.Peek().Counter < finished) _pagesToPut.Add(_queueFreed.Dequeue().Page);
            if (_pagesToPut.Count > 0) _t.PutTablePages(_pagesToPut);
        }

        /// <summary>Entries waiting in this CPU's flush queue (for the timer's trace record).</summary>
        public int Queued => _flushQueue.Count;
        public DmaEngine Device => _device;
        public int Cpu => _cpu;


        private void SubmitFlush()
        {
            _descs.Clear();
            _t.AddDomainInvalidation(_descs);
            _flushTimer.FlushStarted();
            _api.Observer?.OnFlush(_device, _cpu, false, _flushQueue.Count);
            _api.Stats.Flushes++;
            _waitingFlush = true;
            _waitingOp = _head;
            Wait(_descs);
        }

        /// <summary>Submits <paramref name="gather"/> and the IOMMU's wait (iotlb_sync); <see cref="OnInvalidationWaitDone"/> runs when it completes.</summary>
        private void Wait(IotlbGather gather)
        {
            _api.Stats.InvalidationDescriptors += gather.Count + 1;
            _waitStartPs = Sched.Now;
            gather.Submit(this, 0);
        }

        public void OnInvalidationWaitDone(long cookie)
        {
            if (_waitingFlush)
            {
                // fq_flush_iotlb finished: this CPU frees its ring now (fq_ring_free), the others at their next unmap.
                _flushTimer.FlushFinished();
                FreeFlushed();
                _waitingFlush = false;
            }
            else if (_rangeFreed.Count > 0) _t.PutTablePages(_rangeFreed);
            var op = _waitingOp;
            _waitingOp = null;
            if (op is not null)
            {
                _api.Observer?.OnDmaApiPhase(_device, _cpu, DmaApiPhase.InvalidationWait, _waitStartPs, Sched.Now);
                _api.Stats.WaitPs += Sched.Now - op.StartPs;
                Finish(op);
            }
        }

        private void Finish(Op op, ulong mapped = 0)
        {
            _api.Stats.CpuBusyPs += Sched.Now - op.StartPs;
            if (op.Kind == OpKind.Map) _api.Stats.MapLatency.Record(Sched.Now - op.StartPs);
            else _api.Stats.UnmapLatency.Record(Sched.Now - op.StartPs);
            _head = op.Next;
            if (_head is null) _tail = null;
            var client = op.Client;
            long tag = op.Tag;
            OpKind kind = op.Kind;
            _api.Observer?.OnDmaApiCall(_device, _cpu, kind == OpKind.Map ? DmaApiCall.Map : DmaApiCall.Unmap, op.StartPs, kind == OpKind.Map ? mapped : op.Iova, op.Bytes);
            op.Client = null!;
            _pool.Push(op);
            if (kind == OpKind.Map) client.OnMapped(tag, mapped);
            else client.OnUnmapped(tag);
            StartNext();
        }
    }
}

/// <summary>Counters of the run-time DMA API (summary key <c>dmaApi.*</c>).</summary>
public sealed class DmaApiStats : IResettable
{
    public long Maps;
    public long Unmaps;
    public long Flushes;
    public long InvalidationDescriptors;
    /// <summary>Driver CPU time spent in map/unmap calls (ps), including strict waits.</summary>
    public long CpuBusyPs;
    /// <summary>Time unmap calls spent waiting for invalidations (ps).</summary>
    public long WaitPs;
    public readonly LatencyHistogram MapLatency = new("map");
    public readonly LatencyHistogram UnmapLatency = new("unmap");

    public void Reset()
    {
        Maps = Unmaps = Flushes = InvalidationDescriptors = CpuBusyPs = WaitPs = 0;
        MapLatency.Reset();
        UnmapLatency.Reset();
    }
}
