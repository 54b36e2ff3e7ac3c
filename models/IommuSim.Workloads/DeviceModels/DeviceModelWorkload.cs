using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Workloads.DeviceModels;

/// <summary>
/// A device model's statistics for <c>summary.json</c> under <c>devices.&lt;name&gt;.&lt;Section&gt;.*</c>.
/// Keys are relative and may contain dots (<c>latencyNs.p99</c>): each dot is one more level of
/// nesting, as everywhere in the summary. Order is fixed, values are plain numbers.
/// </summary>
public interface IDeviceModelStats
{
    /// <summary><c>nic</c> or <c>nvme</c>.</summary>
    string Section { get; }

    /// <summary>The model's figures; rates (Gbit/s, Mpps, IOPS) are over <paramref name="windowNs"/>
    /// (the run's throughput window), or over the model's own measured span when it is not positive.</summary>
    IReadOnlyList<KeyValuePair<string, double>> Summary(double windowNs = 0);

    /// <summary>The model's latency histograms (values in ps), for <c>latency.csv</c>; each is named
    /// for its <c>kind</c> column (<c>nic.packet</c>, <c>nvme.command</c>, …).</summary>
    IReadOnlyList<Engine.Stats.LatencyHistogram> Histograms { get; }
}

/// <summary>
/// Base of the ring- and queue-based device models (NIC, NVMe). They are workloads (the runner
/// starts them and shares the request budget with them) but drive their device themselves: each
/// workload operation (a packet, a command) becomes several DMAs (descriptor / queue-entry fetches,
/// data, write-backs) issued as the modelled hardware would. The base's generic request loop is
/// not used: this class takes over the scheduler events and DMA completions of its device.
/// </summary>
public abstract class DeviceModelWorkload : WorkloadDriver, IEventHandler, IDmaClient, IDeviceModelStats
{
    /// <summary>The base class schedules its start as event kind 0; model event kinds start at 1.</summary>
    private const int KindStart = 0;

    private readonly RequestBudget _budget;
    private readonly System.Random _arrivalRandom;

    protected DeviceModelWorkload(WorkloadOptions options, DmaEngine device, Scheduler scheduler, RequestBudget budget, SimRandom rng)
        : base(options, device, scheduler, budget, rng)
    {
        _budget = budget;
        // Inter-arrival times from MathNet's distributions over the run-seeded stream, as the generic driver does.
        _arrivalRandom = rng.Fork("model-arrivals").AsSystemRandom();
        budget.MeasuredPhaseStarting += BeginMeasured;
    }

    /// <summary>True once the run's measured phase has begun (warm-up requests all handed out).</summary>
    protected internal bool Measuring { get; private set; }

    /// <summary>
    /// The DMA API a model maps per-buffer through: the one given to its constructor, else the
    /// runner's (<see cref="WorkloadDriver.DmaApi"/>, set before the run starts). Throws naming
    /// <paramref name="key"/> when neither exists.
    /// </summary>
    /// <summary>
    /// The checks every device model runs before it builds anything: the workload's own options and
    /// the model's layout against its device (<paramref name="checkLayout"/>); all errors in one exception.
    /// </summary>
    protected static void ThrowIfInvalid(WorkloadOptions options, DmaEngine device, string path,
        Action<WorkloadOptions, DeviceOptions, string, List<string>> checkLayout)
    {
        var errors = new List<string>();
        options.Validate(path, errors);
        checkLayout(options, device.Options, path, errors);
        if (errors.Count > 0) throw new ArgumentException(string.Join("; ", errors));
    }

    protected IDmaApi ResolveDmaApi(IDmaApi? fromConstructor, string key)
        => fromConstructor ?? DmaApi ?? throw new InvalidOperationException(
            $"{key}: needs the run-time DMA API (translation:dmaApi), which is not available to this run");
    /// <summary>Time the measured phase began (stats were reset).</summary>
    protected long MeasuredStartPs { get; private set; }
    /// <summary>Time the last measured operation of this model completed.</summary>
    protected long LastMeasuredCompletionPs { get; private set; }

    public abstract string Section { get; }

    public abstract IReadOnlyList<KeyValuePair<string, double>> Summary(double windowNs = 0);

    public abstract IReadOnlyList<Engine.Stats.LatencyHistogram> Histograms { get; }

    /// <summary>The model's own measured span: from the later of the measured-phase start and the
    /// last warm-up completion, to its last measured completion.</summary>
    protected double OwnWindowNs
    {
        get
        {
            long start = Math.Max(MeasuredStartPs, _budget.LastWarmupCompletionPs);
            long end = LastMeasuredCompletionPs > 0 ? LastMeasuredCompletionPs : Scheduler.Now;
            return Math.Max(0, end - start) / 1000.0;
        }
    }

    protected double Window(double windowNs) => windowNs > 0 ? windowNs : OwnWindowNs;

    protected sealed override RequestSpec? Next() => null;

    private void BeginMeasured()
    {
        Measuring = true;
        MeasuredStartPs = Scheduler.Now;
        ResetStats(Scheduler.Now);
    }

    /// <summary>Zero the model's statistics (end of warm-up).</summary>
    protected abstract void ResetStats(long nowPs);

    /// <summary>Called once at time 0 (the runner's <see cref="WorkloadDriver.Start"/>).</summary>
    protected abstract void OnStart();

    /// <summary>A model event (<paramref name="kind"/> ≥ 1) scheduled with <see cref="Schedule"/>.</summary>
    protected abstract void OnModelEvent(int kind, long arg);

    /// <summary>A DMA issued with <see cref="TryIssue"/> finished (the request is already back in the pool).</summary>
    protected abstract void OnDmaDone(long tag, bool faulted);

    protected internal void Schedule(long delayPs, int kind, long arg = 0)
    {
        if (kind == KindStart) throw new ArgumentOutOfRangeException(nameof(kind), "kind 0 is the start event");
        Scheduler.ScheduleIn(Math.Max(0, delayPs), this, kind, arg);
    }

    void IEventHandler.OnEvent(int kind, long arg, object? payload)
    {
        if (kind == KindStart) OnStart();
        else OnModelEvent(kind, arg);
    }

    void IDmaClient.OnDmaComplete(DmaEngine device, DmaRequest request)
    {
        long tag = request.Tag;
        bool faulted = request.Faulted;
        device.Return(request);
        OnDmaDone(tag, faulted);
    }

    /// <summary>Issues one DMA now if the device has a free tag.</summary>
    protected internal bool TryIssue(ulong iova, int bytes, bool write, bool measured, long tag)
    {
        if (!Device.CanIssue) return false;
        var r = Device.Rent();
        r.Iova = iova;
        r.Bytes = bytes;
        r.IsWrite = write;
        r.Pasid = Options.Pasid ?? 0;
        r.HasPasid = Options.Pasid.HasValue;
        r.Measured = measured;
        r.Tag = tag;
        r.Owner = this;
        Observer?.OnIssued(Scheduler.Now, Device.Name, Options.Pasid, iova, bytes, write);
        Device.Issue(r);
        return true;
    }

    /// <summary>Takes one workload operation from the run's budget (false: the run issues no more).</summary>
    protected internal bool TakeOperation(out bool measured) => _budget.TryTake(out measured);

    /// <summary>One operation finished (completed or dropped). Returns true when that ended the run.</summary>
    protected internal bool FinishOperation(bool measured)
    {
        if (!measured)
        {
            _budget.OnWarmupCompleted(Scheduler.Now);
            return false;
        }
        LastMeasuredCompletionPs = Scheduler.Now;
        _budget.OnMeasuredCompleted();
        if (!_budget.Finished) return false;
        Scheduler.Stop();
        return true;
    }

    /// <summary>The model's open-loop arrival process (<c>arrival</c>, <c>burstSize</c>) at the given mean gap,
    /// over the model's own run-seeded stream.</summary>
    protected ArrivalProcess NewArrivals(double meanGapPs) => new(Options.Arrival, Options.BurstSize, meanGapPs, _arrivalRandom);

    /// <summary>Checks that [iova, iova + bytes) lies inside one of the device's DMA regions.</summary>
    protected internal static bool InsideRegions(DeviceOptions device, ulong iova, ulong bytes)
        => device.DmaRegions.Any(r => iova >= r.Iova.Value && iova + bytes >= iova && iova + bytes <= r.Iova.Value + (ulong)r.Bytes.Bytes);

    protected internal static ulong AlignUp(ulong v, ulong a) => (v + a - 1) & ~(a - 1);

    protected static void AddLatency(List<KeyValuePair<string, double>> list, string prefix, Engine.Stats.LatencyHistogram h)
    {
        list.Add(new($"{prefix}.mean", Round(h.Mean / 1000.0)));
        list.Add(new($"{prefix}.p50", h.Count == 0 ? 0 : h.Percentile(50) / 1000.0));
        list.Add(new($"{prefix}.p90", h.Count == 0 ? 0 : h.Percentile(90) / 1000.0));
        list.Add(new($"{prefix}.p99", h.Count == 0 ? 0 : h.Percentile(99) / 1000.0));
        list.Add(new($"{prefix}.p999", h.Count == 0 ? 0 : h.Percentile(99.9) / 1000.0));
        list.Add(new($"{prefix}.max", h.Count == 0 ? 0 : h.Max / 1000.0));
    }

    protected static double Round(double v) => Math.Round(v, 6);
}
