using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Pcie;
using MathNet.Numerics.Distributions;

namespace IommuSim.Workloads;

/// <summary>The next request a generator wants to issue.</summary>
public record struct RequestSpec(ulong Iova, int Bytes, bool IsWrite, uint? Pasid, long? NotBeforePs = null);

/// <summary>
/// Drives one device: closed loop (keep <c>outstanding</c> requests in flight) or open loop
/// (Poisson, constant or bursty arrivals at <c>rateMrps</c>; arrivals wait in a FIFO while the
/// device has no free tag). Subclasses only say which request comes next.
/// </summary>
public abstract class WorkloadDriver : IEventHandler, IDmaClient
{
    private const int KindStart = 0;
    private const int KindArrival = 1;
    private const int KindTimedIssue = 2;

    private readonly RequestBudget _budget;
    private readonly int _limit;
    private readonly bool _closed;
    private readonly double _meanGapPs;
    private long _backlog;
    private bool _exhausted;
    private RequestSpec? _held;
    private readonly System.Random _arrivalRandom;

    protected WorkloadDriver(WorkloadOptions options, DmaEngine device, Scheduler scheduler, RequestBudget budget, SimRandom rng)
    {
        Options = options;
        Device = device;
        Scheduler = scheduler;
        _budget = budget;
        Random = rng;
        _limit = Math.Min(options.Outstanding ?? device.MaxOutstanding, device.MaxOutstanding);
        _closed = options.Arrival == "closed";
        _meanGapPs = 1e6 / options.RateMrps; // 1 / (rate × 10^6 per s) in ps
        device.Client = this;
        // Inter-arrival times come from MathNet's distributions over the run-seeded stream.
        _arrivalRandom = rng.Fork("arrivals").AsSystemRandom();
    }

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
        double gap;
        long count = 1;
        switch (Options.Arrival)
        {
            case "constant": gap = _meanGapPs; break;
            case "bursty":
                count = Options.BurstSize;
                gap = Exponential.Sample(_arrivalRandom, 1.0 / (_meanGapPs * count));
                break;
            default: gap = Exponential.Sample(_arrivalRandom, 1.0 / _meanGapPs); break;
        }
        Scheduler.ScheduleIn(Math.Max(1, (long)gap), this, KindArrival, count);
    }

    /// <summary>Issues as many requests as the device, the loop discipline and the budget allow.</summary>
    private void Fill()
    {
        while (!_exhausted && Device.CanIssue && Device.Outstanding < _limit && (_closed || _backlog > 0))
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
                if (Device.Outstanding > 0) QueuedArrivals++;
            }
            var r = Device.Rent();
            r.Iova = s.Iova;
            r.Bytes = s.Bytes;
            r.IsWrite = s.IsWrite;
            r.Pasid = s.Pasid ?? 0;
            r.HasPasid = s.Pasid.HasValue;
            r.Measured = measured;
            Observer?.OnIssued(Scheduler.Now, Device.Name, s.Pasid, s.Iova, s.Bytes, s.IsWrite);
            Device.Issue(r);
        }
    }

    public void OnDmaComplete(DmaEngine device, DmaRequest request)
    {
        bool measured = request.Measured;
        device.Return(request);
        if (measured)
        {
            _budget.OnMeasuredCompleted();
            if (_budget.Finished)
            {
                Scheduler.Stop();
                return;
            }
        }
        else _budget.OnWarmupCompleted(Scheduler.Now);
        Fill();
    }
}
