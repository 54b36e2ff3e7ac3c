using System.Runtime.CompilerServices;
using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using IommuSim.Workloads.DeviceModels;

namespace IommuSim.Workloads;

/// <summary>The next request a generator wants to issue.</summary>
public record struct RequestSpec(ulong Iova, int Bytes, bool IsWrite, uint? Pasid, long? NotBeforePs = null);

/// <summary>
/// Drives one device: closed loop (keep <c>outstanding</c> requests in flight) or open loop
/// (Poisson, constant or bursty arrivals at <c>rateMrps</c>; arrivals wait in a FIFO while the
/// device has no free tag). Subclasses only say which request comes next.
/// With <c>mapping = per-request</c> each request's buffer is mapped through the DMA API before
/// the DMA and unmapped after it, as a driver that maps every I/O does; the request then costs the
/// design's map/unmap path (CPU time, traps, invalidations) on top of the DMA.
/// </summary>
public abstract class WorkloadDriver : IEventHandler, IDmaClient, IDmaApiClient
{
    private const int KindStart = 0;
    private const int KindArrival = 1;
    private const int KindTimedIssue = 2;

    private readonly RequestBudget _budget;
    private readonly int _limit;
    private readonly bool _closed;
    private long _backlog;
    private bool _exhausted;
    private RequestSpec? _held;
    private readonly ArrivalProcess _arrivals;
    private readonly bool _perRequest;
    private readonly OpState[] _ops;
    // Free request slots: a request's tag is its slot, unique while it is in flight (completions come back out of order).
    private readonly int[] _freeSlots;
    private int _freeCount;
    private int _inFlight;

    /// <summary>A request between being taken from the budget and its last step (unmap or DMA).</summary>
    private struct OpState
    {
        public RequestSpec Spec;
        public bool Measured;
        public long TakenPs;
        public ulong MappedIova;
    }

    protected WorkloadDriver(WorkloadOptions options, DmaEngine device, Scheduler scheduler, RequestBudget budget, SimRandom rng)
    {
        Options = options;
        Device = device;
        Scheduler = scheduler;
        _budget = budget;
        Random = rng;
        _limit = Math.Min(options.Outstanding ?? device.MaxOutstanding, device.MaxOutstanding);
        _closed = options.Arrival == "closed";
        device.Client = this;
        // Inter-arrival times come from MathNet's distributions over the run-seeded stream.
        _arrivals = new ArrivalProcess(options.Arrival, options.BurstSize,
            1e6 / options.RateMrps /* 1 / (rate × 10^6 per s) in ps */, rng.Fork("arrivals").AsSystemRandom());
        _perRequest = options.Mapping == "per-request";
        _ops = new OpState[Math.Max(1, _limit)];
        _freeSlots = new int[_ops.Length];
        for (int i = 0; i < _ops.Length; i++) _freeSlots[i] = _ops.Length - 1 - i;
        _freeCount = _ops.Length;
    }

    /// <summary>The run-time DMA API (per-request mapping); set by the system builder.</summary>
    public IDmaApi? DmaApi { get; set; }

    /// <summary>From taking a request to its last step (unmap, or the DMA when premapped), ps.</summary>
    public LatencyHistogram RequestLatency { get; } = new("request");

    public WorkloadOptions Options { get; }
    public DmaEngine Device { get; }
    protected Scheduler Scheduler { get; }
    protected SimRandom Random { get; }
    public IRequestObserver? Observer { get; set; }

    /// <summary>Open-loop arrivals that found the device busy and waited.</summary>
    public long QueuedArrivals { get; private set; }
    /// <summary>True once the generator has nothing more to issue.</summary>
    public bool Exhausted => _exhausted;

    /// <summary>The next request, or null when the generator is done (end of a trace).</summary>
    protected abstract RequestSpec? Next();

    public void Start() => Scheduler.ScheduleIn(0, this, KindStart);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnEvent(int kind, long arg, object? payload)
    {
        switch (kind)
        {
            case KindStart:
                if (_closed) Fill();
                else ScheduleArrivals();
                break;
            case KindArrival:
                _backlog += arg;
                Fill();
                if (!_exhausted) ScheduleArrivals();
                break;
            case KindTimedIssue:
                Fill();
                break;
        }
    }

    private void ScheduleArrivals()
    {
        var (gap, count) = _arrivals.Next();
        Scheduler.ScheduleIn(gap, this, KindArrival, count);
    }

    /// <summary>Issues as many requests as the device, the loop discipline and the budget allow.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Fill()
    {
        while (!_exhausted && _inFlight < _limit && (_perRequest || Device.CanIssue) && (_closed || _backlog > 0))
        {
            RequestSpec? spec = _held ?? Next();
            _held = null;
            if (spec is not RequestSpec s)
            {
                _exhausted = true;
                return;
            }
            if (s.NotBeforePs is long t && t > Scheduler.Now)
            {
                // A timed trace line: wait for its time.
                _held = s;
                Scheduler.ScheduleAt(t, this, KindTimedIssue);
                return;
            }
            if (!_budget.TryTake(out bool measured))
            {
                _exhausted = true;
                return;
            }
            if (!_closed)
            {
                _backlog--;
                if (_inFlight > 0) QueuedArrivals++;
            }
            long tag = _freeSlots[--_freeCount];
            ref OpState op = ref _ops[tag];
            op.Spec = s;
            op.Measured = measured;
            op.TakenPs = Scheduler.Now;
            _inFlight++;
            if (_perRequest)
            {
                var api = DmaApi ?? throw new InvalidOperationException($"workload on {Device.Name}: mapping = per-request needs the DMA API");
                int offset = (int)(s.Iova & 0xFFF);
                api.Map(Device, s.Bytes + offset, s.IsWrite ? Access.Write : Access.Read, this, tag);
            }
            else IssueDma(tag, s.Iova);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void IssueDma(long tag, ulong iova)
    {
        ref OpState op = ref _ops[tag];
        var r = Device.Rent();
        r.Iova = iova;
        r.Bytes = op.Spec.Bytes;
        r.IsWrite = op.Spec.IsWrite;
        r.Pasid = op.Spec.Pasid ?? 0;
        r.HasPasid = op.Spec.Pasid.HasValue;
        r.Measured = op.Measured;
        r.Tag = tag;
        r.Owner = this;
        Observer?.OnIssued(Scheduler.Now, Device.Name, op.Spec.Pasid, iova, op.Spec.Bytes, op.Spec.IsWrite);
        Device.Issue(r);
    }

    void IDmaApiClient.OnMapped(long tag, ulong iova)
    {
        ref OpState op = ref _ops[tag];
        op.MappedIova = iova;
        IssueDma(tag, iova + (op.Spec.Iova & 0xFFF));
    }

    void IDmaApiClient.OnUnmapped(long tag)
    {
        // A stray DMA to the buffer just unmapped (a buggy or malicious device, the DMA-attack window
        // of deferred invalidation): strict invalidation makes it fault, lazy may let it through.
        if (Options.StrayDmaFraction > 0 && Random.NextDouble() < Options.StrayDmaFraction && Device.CanIssue)
        {
            ref OpState op = ref _ops[tag];
            var r = Device.Rent();
            r.Iova = op.MappedIova;
            r.Bytes = 64;
            r.IsWrite = false;
            r.Pasid = op.Spec.Pasid ?? 0;
            r.HasPasid = op.Spec.Pasid.HasValue;
            r.Measured = false;
            r.Tag = StrayTag;
            r.Owner = this;
            StrayDmas++;
            _inFlight++; // the stray holds a device tag like any request
            Device.Issue(r);
        }
        OpDone(tag);
    }

    private const long StrayTag = -1;

    /// <summary>Stray DMAs issued to just-unmapped buffers (<c>strayDmaFraction</c>).</summary>
    public long StrayDmas { get; private set; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void OpDone(long tag)
    {
        ref OpState op = ref _ops[tag];
        if (op.Measured) RequestLatency.Record(Scheduler.Now - op.TakenPs);
        _freeSlots[_freeCount++] = (int)tag;
        _inFlight--;
        Fill();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void OnDmaComplete(DmaEngine device, DmaRequest request)
    {
        bool measured = request.Measured;
        long tag = request.Tag;
        device.Return(request);
        if (tag == StrayTag)
        {
            _inFlight--;
            Fill();
            return;
        }
        if (measured)
        {
            _budget.OnMeasuredCompleted();
            if (_budget.Finished)
            {
                // The run's last request: a premapped one is complete now (a per-request one would still unmap).
                if (!_perRequest) RequestLatency.Record(Scheduler.Now - _ops[tag].TakenPs);
                Scheduler.Stop();
                return;
            }
        }
        else _budget.OnWarmupCompleted(Scheduler.Now);
        if (_perRequest)
        {
            ref OpState op = ref _ops[tag];
            DmaApi!.Unmap(Device, op.MappedIova, op.Spec.Bytes + (int)(op.Spec.Iova & 0xFFF), this, tag);
        }
        else OpDone(tag);
    }
}
