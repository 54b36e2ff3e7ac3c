using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Workloads.Nic;

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
/// The host is one serial CPU context: it builds commands (with <c>map-per-io</c>, mapping the data
/// buffer through the DMA API first) and handles completions (unmapping it). Data buffers are
/// I/O-size aligned slots of the window [iova, iova + workingSetBytes), random or sequential.
/// </para>
/// </summary>
public sealed class NvmeWorkload : DeviceModelWorkload, IDmaApiClient
{
    private const int KindArrival = 1;
    private const int KindHostJob = 2;
    private const int KindMediaDone = 3;

    private const long TagSq = 1L << 32;
    private const long TagPrp = 2L << 32;
    private const long TagData = 3L << 32;
    private const long TagCq = 4L << 32;

    private const long JobNew = 0;
    private const long JobComplete = 1;

    private readonly IDmaApi? _dmaApiArg;
    private readonly string _path;
    private IDmaApi? _dmaApi;
    private readonly NvmeOptions _nvme;
    private readonly int _qd;
    private readonly int _bytes;
    private readonly bool _closed;
    private readonly ulong _slots;
    private readonly int _prpSlotBytes;
    private readonly long _readPs, _writePs, _hostPs;
    private readonly double _meanGapPs;

    private readonly long[] _submitPs;
    private readonly bool[] _measured;
    private readonly bool[] _isRead;
    private readonly bool[] _faulted;
    private readonly ulong[] _dataIova;
    private readonly int[] _sqCid;
    private readonly Stack<int> _freeCids;
    private readonly Queue<long> _pendingDma;
    private readonly Queue<int> _mediaQueue;
    private readonly Queue<long> _hostJobs;

    private long _sqTail, _sqFetchIssued, _cqTail;
    private long _backlog;
    private bool _exhausted;
    private ulong _seqNext;
    private int _mediaBusy;
    private bool _hostBusy;
    private long _apiCallPs;

    private readonly TimeAverage _outstanding = new();
    private readonly TimeAverage _media = new();
    private readonly TimeAverage _hostBusyTime = new();
    private readonly TimeAverage _backlogAvg = new();

    public NvmeWorkload(WorkloadOptions options, DmaEngine device, Scheduler scheduler, RequestBudget budget, SimRandom rng,
        IDmaApi? dmaApi, string path = "workload")
        : base(options, device, scheduler, budget, rng)
    {
        if (options.Type != "nvme") throw new ArgumentException($"{path}:type = {options.Type}: an NVMe model needs type nvme");
        var errors = new List<string>();
        options.Validate(path, errors);
        CheckLayout(options, device.Options, path, errors);
        if (errors.Count > 0) throw new ArgumentException(string.Join("; ", errors));
        _nvme = options.Nvme;
        MapPerIo = _nvme.BufferPolicy == "map-per-io";
        _dmaApiArg = dmaApi;
        _path = path;
        _qd = _nvme.QueueDepth;
        _bytes = (int)options.Bytes.Bytes;
        _closed = options.Arrival == "closed";
        _slots = (ulong)(options.WorkingSetBytes.Bytes / options.Bytes.Bytes);
        _prpSlotBytes = PrpSlotBytes(_bytes);
        _readPs = SimTime.FromUs(_nvme.ReadLatencyUs);
        _writePs = SimTime.FromUs(_nvme.WriteLatencyUs);
        _hostPs = SimTime.FromNs(_nvme.HostNsPerCommand);
        _meanGapPs = 1e6 / options.RateMrps;
        var layout = Layout(options, device.Options);
        DataIova = layout.Data;
        SqIova = layout.Sq;
        CqIova = layout.Cq;
        PrpListIova = layout.Prp;
        _submitPs = new long[_qd];
        _measured = new bool[_qd];
        _isRead = new bool[_qd];
        _faulted = new bool[_qd];
        _dataIova = new ulong[_qd];
        _sqCid = new int[_qd];
        _freeCids = new Stack<int>(_qd);
        for (int c = _qd - 1; c >= 0; c--) _freeCids.Push(c);
        _pendingDma = new Queue<long>(4 * _qd);
        _mediaQueue = new Queue<int>(_qd);
        _hostJobs = new Queue<long>(2 * _qd);
    }

    public bool MapPerIo { get; }
    /// <summary>Start of the data window (recycle).</summary>
    public ulong DataIova { get; }
    public ulong SqIova { get; }
    public ulong CqIova { get; }
    /// <summary>PRP lists, one slot per command id.</summary>
    public ulong PrpListIova { get; }
    public NvmeStats Stats { get; } = new();
    public override string Section => "nvme";
    public override IReadOnlyList<Engine.Stats.LatencyHistogram> Histograms
        => [Stats.CommandLatency, Stats.ReadLatency, Stats.WriteLatency, Stats.MapLatency, Stats.UnmapLatency];
    /// <summary>Commands submitted and not yet completed.</summary>
    public long Outstanding => _outstanding.Value;

    // ---- layout ------------------------------------------------------------------------

    private static int PrpSlotBytes(int ioBytes)
    {
        int entries = ioBytes / NvmeOptions.PageBytes; // pages after the first, allowing one extra for an unaligned buffer
        int slot = 64;
        while (slot < entries * 8) slot <<= 1;
        return slot;
    }

    private readonly record struct QueueLayout(ulong Data, ulong Sq, ulong Cq, ulong Prp, ulong End);

    private static QueueLayout Layout(WorkloadOptions o, DeviceOptions d)
    {
        var n = o.Nvme;
        ulong data = o.Iova?.Value ?? (d.DmaRegions.Count > 0 ? d.DmaRegions[0].Iova.Value : 0);
        ulong q = n.QueueIova?.Value ?? AlignUp(data + (ulong)Math.Max(0, o.WorkingSetBytes.Bytes), 4096);
        ulong qd = (ulong)Math.Clamp(n.QueueDepth, 1, 1024);
        ulong cq = q + AlignUp(qd * NvmeOptions.SqEntryBytes, 4096);
        ulong prp = cq + AlignUp(qd * NvmeOptions.CqEntryBytes, 4096);
        ulong end = prp + AlignUp(qd * (ulong)PrpSlotBytes((int)Math.Clamp(o.Bytes.Bytes, NvmeOptions.PageBytes, 2 << 20)), 4096);
        return new QueueLayout(data, q, cq, prp, end);
    }

    /// <summary>The queues and PRP lists must lie inside the device's dmaRegions, clear of the data window.</summary>
    public static void CheckLayout(WorkloadOptions o, DeviceOptions d, string path, List<string> errors)
    {
        if (d.DmaRegions.Count == 0)
        {
            errors.Add($"{path}:device = {d.Name}: an NVMe model needs the device to have a dmaRegion for its queues");
            return;
        }
        var l = Layout(o, d);
        ulong dataEnd = l.Data + (ulong)Math.Max(0, o.WorkingSetBytes.Bytes);
        if (!InsideRegions(d, l.Sq, l.End - l.Sq))
            errors.Add($"{path}:nvme:queueIova = 0x{l.Sq:x}: the queues and PRP lists [0x{l.Sq:x}, 0x{l.End:x}) must lie inside one of {d.Name}'s dmaRegions (default: right after the data window)");
        else if (l.Sq < dataEnd && l.Data < l.End)
            errors.Add($"{path}:nvme:queueIova = 0x{l.Sq:x}: the queues [0x{l.Sq:x}, 0x{l.End:x}) overlap the data window [0x{l.Data:x}, 0x{dataEnd:x})");
        if (o.Nvme.BufferPolicy == "recycle" && !InsideRegions(d, l.Data, dataEnd - l.Data))
            errors.Add($"{path}:workingSetBytes = {o.WorkingSetBytes}: the data window [0x{l.Data:x}, 0x{dataEnd:x}) must lie inside one of {d.Name}'s dmaRegions");
    }

    // ---- host ----------------------------------------------------------------------------

    protected override void OnStart()
    {
        if (MapPerIo) _dmaApi = ResolveDmaApi(_dmaApiArg, $"{_path}:nvme:bufferPolicy = map-per-io");
        if (_closed) StartCommands();
        else ScheduleArrival();
    }

    private void ScheduleArrival()
    {
        var (gap, count) = NextArrival(_meanGapPs);
        Schedule(gap, KindArrival, count);
    }

    protected override void OnModelEvent(int kind, long arg)
    {
        switch (kind)
        {
            case KindArrival:
                _backlog += arg;
                StartCommands();
                if (_exhausted) _backlog = 0; // the run takes no more commands: these never arrived
                _backlogAvg.Set(Scheduler.Now, _backlog);
                if (!_exhausted) ScheduleArrival();
                break;
            case KindHostJob:
                RunJob(arg);
                break;
            case KindMediaDone:
                MediaDone((int)arg);
                break;
        }
    }

    /// <summary>Starts commands while a command id is free and there is work (closed loop: always).</summary>
    private void StartCommands()
    {
        while (!_exhausted && _freeCids.Count > 0 && (_closed || _backlog > 0))
        {
            if (!TakeOperation(out bool measured))
            {
                _exhausted = true;
                return;
            }
            if (!_closed)
            {
                _backlog--;
                _backlogAvg.Set(Scheduler.Now, _backlog);
            }
            int cid = _freeCids.Pop();
            _measured[cid] = measured;
            _faulted[cid] = false;
            _isRead[cid] = Random.NextDouble() < _nvme.ReadFraction;
            ulong slot;
            if (_nvme.Pattern == "sequential")
            {
                slot = _seqNext;
                _seqNext = _seqNext + 1 == _slots ? 0 : _seqNext + 1;
            }
            else slot = Random.NextBelow(_slots);
            _dataIova[cid] = DataIova + slot * (ulong)_bytes;
            EnqueueJob(JobNew, cid);
        }
    }

    private void EnqueueJob(long kind, int cid)
    {
        _hostJobs.Enqueue((kind << 32) | (uint)cid);
        KickHost();
    }

    private void KickHost()
    {
        if (_hostBusy || _hostJobs.Count == 0) return;
        _hostBusy = true;
        _hostBusyTime.Set(Scheduler.Now, 1);
        Schedule(_hostPs, KindHostJob, _hostJobs.Dequeue());
    }

    private void JobDone()
    {
        _hostBusy = false;
        _hostBusyTime.Set(Scheduler.Now, 0);
        KickHost();
    }

    private void RunJob(long job)
    {
        int cid = (int)(job & 0xFFFF_FFFF);
        if (job >> 32 == JobNew)
        {
            if (MapPerIo)
            {
                _apiCallPs = Scheduler.Now;
                // A read command's data is written by the device, a write command's read.
                _dmaApi!.Map(Device, _bytes, _isRead[cid] ? Access.Write : Access.Read, this, job);
                return;
            }
            Submit(cid);
            JobDone();
            return;
        }
        if (MapPerIo)
        {
            _apiCallPs = Scheduler.Now;
            _dmaApi!.Unmap(Device, _dataIova[cid], _bytes, this, job);
            return;
        }
        FreeCid(cid);
        JobDone();
    }

    void IDmaApiClient.OnMapped(long tag, ulong iova)
    {
        Stats.Maps++;
        Stats.MapLatency.Record(Scheduler.Now - _apiCallPs);
        int cid = (int)(tag & 0xFFFF_FFFF);
        _dataIova[cid] = iova;
        Submit(cid);
        JobDone();
    }

    void IDmaApiClient.OnUnmapped(long tag)
    {
        Stats.Unmaps++;
        Stats.UnmapLatency.Record(Scheduler.Now - _apiCallPs);
        FreeCid((int)(tag & 0xFFFF_FFFF));
        JobDone();
    }

    /// <summary>The host writes the SQ entry (and, for more than two pages, the PRP list) and rings the doorbell.</summary>
    private void Submit(int cid)
    {
        _submitPs[cid] = Scheduler.Now;
        _sqCid[_sqTail % _qd] = cid;
        _sqTail++;
        if (_measured[cid]) Stats.Submitted++;
        _outstanding.Set(Scheduler.Now, _outstanding.Value + 1);
        Pump();
    }

    private void FreeCid(int cid)
    {
        _freeCids.Push(cid);
        StartCommands();
    }

    // ---- controller ------------------------------------------------------------------------

    private int Pages(int cid) => NvmeOptions.Pages(_dataIova[cid], _bytes);

    /// <summary>Issues DMAs of commands in progress (in order), then fetches new SQ entries.</summary>
    private void Pump()
    {
        while (_pendingDma.Count > 0)
        {
            if (!TryIssueFor(_pendingDma.Peek())) return;
            _pendingDma.Dequeue();
        }
        while (_sqFetchIssued < _sqTail)
        {
            if (!TryIssueFor(TagSq | (uint)_sqCid[_sqFetchIssued % _qd])) return;
            _sqFetchIssued++;
        }
    }

    private void IssueOrQueue(long tag)
    {
        if (_pendingDma.Count > 0 || !TryIssueFor(tag)) _pendingDma.Enqueue(tag);
    }

    private bool TryIssueFor(long tag)
    {
        int cid = (int)(tag & 0xFFFF_FFFF);
        bool m = _measured[cid];
        switch (tag & ~0xFFFF_FFFFL)
        {
            case TagSq:
                if (!TryIssue(SqIova + (ulong)(_sqFetchIssued % _qd) * NvmeOptions.SqEntryBytes, NvmeOptions.SqEntryBytes, false, m, tag)) return false;
                Stats.SqEntryFetches++;
                return true;
            case TagPrp:
            {
                int bytes = (Pages(cid) - 1) * 8;
                if (!TryIssue(PrpListIova + (ulong)cid * (ulong)_prpSlotBytes, bytes, false, m, tag)) return false;
                Stats.PrpListFetches++;
                Stats.PrpListBytes += bytes;
                return true;
            }
            case TagData:
                if (!TryIssue(_dataIova[cid], _bytes, _isRead[cid], m, tag)) return false;
                Stats.DataDmas++;
                return true;
            default:
                if (!TryIssue(CqIova + (ulong)(_cqTail % _qd) * NvmeOptions.CqEntryBytes, NvmeOptions.CqEntryBytes, true, m, tag)) return false;
                _cqTail++;
                Stats.CqEntryWrites++;
                return true;
        }
    }

    protected override void OnDmaDone(long tag, bool faulted)
    {
        int cid = (int)(tag & 0xFFFF_FFFF);
        if (faulted)
        {
            Stats.DmaFaults++;
            _faulted[cid] = true;
        }
        switch (tag & ~0xFFFF_FFFFL)
        {
            case TagSq:
                if (Pages(cid) > 2) IssueOrQueue(TagPrp | (uint)cid);
                else DataAddressesKnown(cid);
                break;
            case TagPrp:
                DataAddressesKnown(cid);
                break;
            case TagData:
                if (_isRead[cid]) IssueOrQueue(TagCq | (uint)cid);
                else MediaStart(cid);
                break;
            default:
                CommandDone(cid);
                break;
        }
        Pump();
    }

    private void DataAddressesKnown(int cid)
    {
        if (_isRead[cid]) MediaStart(cid);
        else IssueOrQueue(TagData | (uint)cid);
    }

    private void MediaStart(int cid)
    {
        if (_mediaBusy >= _nvme.MediaParallelism)
        {
            _mediaQueue.Enqueue(cid);
            return;
        }
        _mediaBusy++;
        _media.Set(Scheduler.Now, _mediaBusy);
        Schedule(_isRead[cid] ? _readPs : _writePs, KindMediaDone, cid);
    }

    private void MediaDone(int cid)
    {
        _mediaBusy--;
        _media.Set(Scheduler.Now, _mediaBusy);
        if (_mediaQueue.Count > 0) MediaStart(_mediaQueue.Dequeue());
        IssueOrQueue((_isRead[cid] ? TagData : TagCq) | (uint)cid);
        Pump();
    }

    private void CommandDone(int cid)
    {
        bool m = _measured[cid];
        _outstanding.Set(Scheduler.Now, _outstanding.Value - 1);
        if (m)
        {
            long lat = Scheduler.Now - _submitPs[cid];
            Stats.Completed++;
            if (_isRead[cid])
            {
                Stats.Reads++;
                Stats.ReadLatency.Record(lat);
            }
            else
            {
                Stats.Writes++;
                Stats.WriteLatency.Record(lat);
            }
            if (_faulted[cid]) Stats.Faulted++;
            else Stats.Bytes += _bytes;
            Stats.CommandLatency.Record(lat);
        }
        EnqueueJob(JobComplete, cid);
        FinishOperation(m);
    }

    // ---- statistics ---------------------------------------------------------------------

    protected override void ResetStats(long nowPs)
    {
        Stats.Reset();
        _outstanding.Reset(nowPs);
        _media.Reset(nowPs);
        _hostBusyTime.Reset(nowPs);
        _backlogAvg.Reset(nowPs);
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
        list.Add(new("queueDepth", _qd));
        list.Add(new("outstandingMean", Round(_outstanding.Mean(now))));
        list.Add(new("hostBacklogMean", Round(_backlogAvg.Mean(now))));
        list.Add(new("hostBacklogMax", _backlogAvg.Max));
        list.Add(new("mediaUtilization", Round(_media.Mean(now) / _nvme.MediaParallelism)));
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
        list.Add(new("hostBusyFraction", Round(_hostBusyTime.Mean(now))));
        return list;
    }
}
