using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;
using IommuSim.Workloads.DeviceModels;

namespace IommuSim.Workloads.Nvme;

/// <summary>
/// An NVMe controller with one submission/completion queue pair in DMA-able memory.
/// <para>
/// Per command: the host writes a 64-byte SQ entry and rings the doorbell; the controller fetches
/// the entry (64-byte DMA read), and when the transfer touches more than two pages fetches the
/// PRP list PRP2 points to (a DMA read of 8 bytes per page after the first; one or two pages are
/// named by PRP1/PRP2 directly). A read then spends <c>readLatencyUs</c> in the media and
/// DMA-writes its data to host memory; a write DMA-reads its data and then spends
/// <c>writeLatencyUs</c> in the media. The media serves <c>mediaParallelism</c> commands at once,
/// so once the queue depth exceeds what it can serve, commands wait and latency grows with QD.
/// Finally the controller writes a 16-byte CQ entry; the command's latency runs from submission to
/// that write's completion.
/// </para>
/// <para>
/// The parts: this class is the arrival process and the statistics; <see cref="NvmeHost"/> is the
/// host driver (one serial CPU context; <c>map-per-io</c> maps each data buffer through the DMA
/// API), <see cref="NvmeController"/> the controller and its media, <see cref="NvmeQueuePair"/> the
/// queues in memory both sides share.
/// </para>
/// </summary>
public sealed class NvmeWorkload : DeviceModelWorkload
{
    private const int KindArrival = 1;
    internal const int KindMediaDone = 3;

    private readonly IDmaApi? _dmaApiArg;
    private readonly string _path;
    private readonly NvmeOptions _nvme;
    private readonly bool _closed;
    private readonly ArrivalProcess _arrivals;
    private readonly NvmeQueuePair _qp;
    private readonly NvmeController _controller;
    private readonly NvmeHost _host;

    public NvmeWorkload(WorkloadOptions options, DmaEngine device, Scheduler scheduler, RequestBudget budget, SimRandom rng,
        IDmaApi? dmaApi, string path = "workload")
        : base(options, device, scheduler, budget, rng)
    {
        if (options.Type != "nvme") throw new ArgumentException($"{path}:type = {options.Type}: an NVMe model needs type nvme");
        ThrowIfInvalid(options, device, path, CheckLayout);
        _nvme = options.Nvme;
        MapPerIo = _nvme.BufferPolicy == "map-per-io";
        _dmaApiArg = dmaApi;
        _path = path;
        _closed = options.Arrival == "closed";
        _arrivals = NewArrivals(1e6 / options.RateMrps);
        _qp = new NvmeQueuePair(options, device.Options);
        _controller = new NvmeController(this, scheduler, _qp, _nvme, Stats);
        _host = new NvmeHost(this, scheduler, _qp, _controller, options, Stats, rng, device);
        _controller.Host = _host;
    }

    public bool MapPerIo { get; }
    /// <summary>Start of the data window (recycle).</summary>
    public ulong DataIova => _qp.DataIova;
    public ulong SqIova => _qp.SqIova;
    public ulong CqIova => _qp.CqIova;
    /// <summary>PRP lists, one slot per command id.</summary>
    public ulong PrpListIova => _qp.PrpListIova;
    public NvmeStats Stats { get; } = new();
    public override string Section => "nvme";
    public override IReadOnlyList<Engine.Stats.LatencyHistogram> Histograms
        => [Stats.CommandLatency, Stats.ReadLatency, Stats.WriteLatency, Stats.MapLatency, Stats.UnmapLatency];
    /// <summary>Commands submitted and not yet completed.</summary>
    public long Outstanding => _qp.Outstanding.Value;

    /// <summary>The queues and PRP lists must lie inside the device's dmaRegions, clear of the data window.</summary>
    public static void CheckLayout(WorkloadOptions o, DeviceOptions d, string path, List<string> errors)
        => NvmeQueuePair.CheckLayout(o, d, path, errors);

    protected override void OnStart()
    {
        if (MapPerIo) _host.Api = ResolveDmaApi(_dmaApiArg, $"{_path}:nvme:bufferPolicy = map-per-io");
        if (_closed) _host.StartCommands();
        else ScheduleArrival();
    }

    private void ScheduleArrival()
    {
        var (gap, count) = _arrivals.Next();
        Schedule(gap, KindArrival, count);
    }

    protected override void OnModelEvent(int kind, long arg)
    {
        switch (kind)
        {
            case KindArrival:
                _host.Arrive(arg);
                if (!_host.Exhausted) ScheduleArrival();
                break;
            case KindMediaDone:
                _controller.MediaDone((int)arg);
                break;
        }
    }

    protected override void OnDmaDone(long tag, bool faulted) => _controller.OnDmaDone(tag, faulted);

    protected override void ResetStats(long nowPs)
    {
        Stats.Reset();
        _qp.Outstanding.Reset(nowPs);
        _controller.Media.Reset(nowPs);
        _host.Cpu.BusyTime.Reset(nowPs);
        _host.Backlog.Reset(nowPs);
    }

    /// <summary>
    /// <c>devices.&lt;name&gt;.nvme.*</c>: commandsSubmitted, commandsCompleted, readCommands,
    /// writeCommands, commandsFaulted, iops, throughputGbps (data bytes), latencyNs.{mean,p50,p90,
    /// p99,p999,max} (submission → CQ entry written), readLatencyNs.mean, writeLatencyNs.mean,
    /// queueDepth, outstandingMean, hostBacklogMean, hostBacklogMax (open loop: arrived commands
    /// waiting for a free queue slot), mediaUtilization, sqEntryFetches, prpListFetches,
    /// prpListBytes, dataDmas, cqEntryWrites, dmaFaults, maps, unmaps, mapLatencyNs.mean,
    /// unmapLatencyNs.mean, hostBusyFraction.
    /// </summary>
    public override IReadOnlyList<KeyValuePair<string, double>> Summary(double windowNs = 0)
    {
        double w = Window(windowNs);
        long now = Scheduler.Now;
        var s = Stats;
        var list = new List<KeyValuePair<string, double>>
        {
            new("commandsSubmitted", s.Submitted),
            new("commandsCompleted", s.Completed),
            new("readCommands", s.Reads),
            new("writeCommands", s.Writes),
            new("commandsFaulted", s.Faulted),
            new("iops", Round(w > 0 ? s.Completed * 1e9 / w : 0)),
            new("throughputGbps", Round(w > 0 ? s.Bytes * 8.0 / w : 0)),
        };
        AddLatency(list, "latencyNs", s.CommandLatency);
        list.Add(new("readLatencyNs.mean", Round(s.ReadLatency.Mean / 1000.0)));
        list.Add(new("writeLatencyNs.mean", Round(s.WriteLatency.Mean / 1000.0)));
        list.Add(new("queueDepth", _qp.Depth));
        list.Add(new("outstandingMean", Round(_qp.Outstanding.Mean(now))));
        list.Add(new("hostBacklogMean", Round(_host.Backlog.Mean(now))));
        list.Add(new("hostBacklogMax", _host.Backlog.Max));
        list.Add(new("mediaUtilization", Round(_controller.Media.Mean(now) / _nvme.MediaParallelism)));
        list.Add(new("sqEntryFetches", s.SqEntryFetches));
        list.Add(new("prpListFetches", s.PrpListFetches));
        list.Add(new("prpListBytes", s.PrpListBytes));
        list.Add(new("dataDmas", s.DataDmas));
        list.Add(new("cqEntryWrites", s.CqEntryWrites));
        list.Add(new("dmaFaults", s.DmaFaults));
        list.Add(new("maps", s.Maps));
        list.Add(new("unmaps", s.Unmaps));
        list.Add(new("mapLatencyNs.mean", Round(s.MapLatency.Mean / 1000.0)));
        list.Add(new("unmapLatencyNs.mean", Round(s.UnmapLatency.Mean / 1000.0)));
        list.Add(new("hostBusyFraction", Round(_host.Cpu.BusyTime.Mean(now))));
        return list;
    }
}
