using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Workloads.DeviceModels;

namespace IommuSim.Workloads.KernelTrace;

/// <summary>The DMA API calls a replayed kernel trace needs: map and unmap at the IOVAs the traced kernel chose.</summary>
public interface IFixedIovaDmaApi
{
    /// <summary><c>strict</c> or <c>lazy</c> (translation.dmaApi.mode).</summary>
    string Mode { get; }
    void MapAt(DmaEngine device, ulong iova, int bytes, Access access, IDmaApiClient client, long tag, int cpu);
    void UnmapAt(DmaEngine device, ulong iova, int bytes, IDmaApiClient client, long tag, int cpu);
}

/// <summary>
/// Replays a kernel's <c>iommu:map</c>/<c>iommu:unmap</c> stream (ftrace text) through the run-time
/// DMA API of the configured design and mode, at the traced IOVAs, with <c>kernelTrace.dmasPerMap</c>
/// DMAs by the device to each mapped buffer. Events keep their recorded order and, scaled by
/// <c>kernelTrace.timeScale</c>, their recorded times; an unmap waits for its buffer's DMAs, and a map
/// for an unmap of the same range still in progress, so the replay may lag the trace (reported).
/// <c>io_page_fault</c> lines become DMAs to the faulting IOVA; <c>qi_submit</c> lines and any other
/// events are counted and reported next to what the simulated kernel did. The file is streamed.
/// </summary>
public sealed class KernelTraceWorkload : DeviceModelWorkload, IDmaApiClient, IDisposable
{
    private const int KindPump = 1;
    private const long FaultTag = -1;

    private readonly FtraceReader _reader;
    private readonly IFixedIovaDmaApi _api;
    private readonly KernelTraceOptions _k;
    private readonly int _dmaBytes;
    private readonly LiveMappings _live = new();
    private readonly List<LiveMappings.Entry> _hits = [];
    private readonly Queue<int> _issue = new();
    private readonly Queue<(ulong Iova, bool Write)> _faults = new();
    private readonly List<(ulong A, ulong B, long Id)> _unmapping = [];
    private readonly Action<int, int> _onPieces;
    private Buffer[] _buffers = new Buffer[64];
    private readonly Stack<int> _freeBuffers = new();
    private int _bufferCount;
    private FtraceEvent _pending;
    private bool _hasPending, _traceDone, _pumpArmed, _blocked;
    /// <summary>The pending event has already been counted as blocked once.</summary>
    private bool _pendingWaited;
    private long _firstPs = -1;
    private long _nextUnmapId;

    private struct Buffer
    {
        /// <summary>Traced IOVA; DmaBase is where the device addresses it (the same, except without translation, where the DMA API returns the physical address).</summary>
        public ulong Iova, DmaBase, Size;
        public int DmasLeft, InFlight, Issued, Pieces;
        public bool Mapped;
    }

    public KernelTraceWorkload(WorkloadOptions o, DmaEngine device, Scheduler s, RequestBudget b, SimRandom rng, FtraceReader reader, IFixedIovaDmaApi api)
        : base(o, device, s, b, rng)
    {
        if (api.Mode is not ("strict" or "lazy")) throw new ArgumentException($"a kernel trace replays through DMA API mode strict or lazy, not '{api.Mode}'");
        _reader = reader;
        _api = api;
        _k = o.KernelTrace;
        _dmaBytes = (int)Math.Clamp(o.Bytes.Bytes, 1, 1 << 20);
        _onPieces = OnPieces;
    }

    public KernelTraceCounts Trace => _reader.Counts;

    // What the replay did (summary kernelTrace.replay.*).
    public long Maps, Unmaps, UntracedUnmaps, Dmas, FaultDmas, FaultDmasFaulted, BlockedMaps, BlockedUnmaps, LaggedEvents;
    public long MaxLagPs, SumLagPs;

    public override string Section => "kernelTrace";
    public override IReadOnlyList<Engine.Stats.LatencyHistogram> Histograms => [];

    public override IReadOnlyList<KeyValuePair<string, double>> Summary(double windowNs = 0)
    {
        var list = Trace.Summary().Select(kv => new KeyValuePair<string, double>("trace." + kv.Key, kv.Value)).ToList();
        void Add(string k, double v) => list.Add(new("replay." + k, Round(v)));
        Add("maps", Maps);
        Add("unmaps", Unmaps);
        Add("untracedUnmaps", UntracedUnmaps);
        Add("dmas", Dmas);
        Add("faultDmas", FaultDmas);
        Add("faultDmasFaulted", FaultDmasFaulted);
        Add("blockedMaps", BlockedMaps);
        Add("blockedUnmaps", BlockedUnmaps);
        Add("laggedEvents", LaggedEvents);
        Add("maxLagUs", MaxLagPs / 1e6);
        Add("meanLagUs", Trace.Maps + Trace.Unmaps + Trace.PageFaults > 0 ? SumLagPs / 1e6 / (Trace.Maps + Trace.Unmaps + Trace.PageFaults) : 0);
        Add("liveMappingsMax", _live.MaxCount);
        Add("liveMappingsAtEnd", _live.Count);
        return list;
    }

    // The whole trace is one measured phase (warm-up is refused by the config checks).
    protected override void ResetStats(long nowPs) { }

    protected override void OnStart() => Pump();

    protected override void OnModelEvent(int kind, long arg)
    {
        _pumpArmed = false;
        Pump();
    }

    /// <summary>Processes trace events in order until one must wait (for its time, a DMA, or an unmap).</summary>
    private void Pump()
    {
        _blocked = false;
        while (true)
        {
            if (!_hasPending)
            {
                if (_traceDone || !_reader.Next(out _pending)) { _traceDone = true; return; }
                _hasPending = true;
                if (_firstPs < 0) _firstPs = _pending.TimePs;
            }
            ref readonly var e = ref _pending;
            if (e.Kind == FtraceEventKind.QiSubmit) { _hasPending = false; continue; } // counted by the reader
            long due = Due(e.TimePs);
            if (due > Scheduler.Now)
            {
                if (!_pumpArmed) { _pumpArmed = true; Schedule(due - Scheduler.Now, KindPump); }
                return;
            }
            bool done = e.Kind switch
            {
                FtraceEventKind.Map => DoMap(e),
                FtraceEventKind.Unmap => DoUnmap(e),
                FtraceEventKind.IoPageFault => DoFault(e),
                _ => true,
            };
            if (!done) { _blocked = _pendingWaited = true; return; }
            long lag = _k.TimeScale > 0 ? Scheduler.Now - due : 0; // with timeScale 0 nothing has a due time
            if (lag > 0) { LaggedEvents++; SumLagPs += lag; MaxLagPs = Math.Max(MaxLagPs, lag); }
            _hasPending = _pendingWaited = false;
        }
    }

    private long Due(long tracePs)
    {
        long rel = tracePs - _firstPs;
        return _k.TimeScale == 1.0 ? rel : (long)(rel * _k.TimeScale);
    }

    private int Cpu(in FtraceEvent e) => _k.UseTraceCpus ? e.Cpu % 64 : 0;

    private bool DoMap(in FtraceEvent e)
    {
        ulong a = e.Iova, b = e.Iova + e.Size;
        foreach (var u in _unmapping)
            if (u.A < b && a < u.B) { if (!_pendingWaited) BlockedMaps++; return false; } // the same IOVAs are still being unmapped
        if (_live.Overlaps(a, b, out var hit))
            throw new InvalidOperationException($"{_reader.FileName}:{e.Line}: map of 0x{a:x}+0x{e.Size:x} overlaps a live mapping at 0x{hit.Start:x} (the trace checks should have refused this)");
        int id = NewBuffer(a, e.Size);
        _live.Add(a, b, id);
        Maps++;
        _api.MapAt(Device, a, (int)e.Size, Access.ReadWrite, this, id, Cpu(e));
        return true;
    }

    private bool DoUnmap(in FtraceEvent e)
    {
        // The kernel unmapped unmapped_size bytes from iova (less than asked when it met a hole).
        ulong len = e.UnmappedSize > 0 ? e.UnmappedSize : e.Size;
        ulong a = e.Iova, b = e.Iova + len;
        _live.Intersecting(a, b, _hits);
        foreach (var h in _hits)
        {
            ref var buf = ref _buffers[h.Buffer];
            if (!buf.Mapped || buf.DmasLeft > 0 || buf.InFlight > 0) { if (!_pendingWaited) BlockedUnmaps++; return false; } // the device is not done with it
        }
        if (_hits.Count == 0) UntracedUnmaps++; // mapped before tracing began: the call and its invalidation still happen
        _live.Remove(a, b, _onPieces);
        long id = _nextUnmapId++;
        _unmapping.Add((a, b, id));
        Unmaps++;
        _api.UnmapAt(Device, a, (int)len, this, id, Cpu(e));
        return true;
    }

    private bool DoFault(in FtraceEvent e)
    {
        if (!_k.ReplayFaults) return true;
        _faults.Enqueue((e.Iova & ~0x3FUL, e.FaultWrite));
        IssueDmas();
        return true;
    }

    private void OnPieces(int buffer, int delta)
    {
        ref var buf = ref _buffers[buffer];
        buf.Pieces += delta;
        if (buf.Pieces == 0) _freeBuffers.Push(buffer);
    }

    private int NewBuffer(ulong iova, ulong size)
    {
        int id;
        if (_freeBuffers.Count > 0) id = _freeBuffers.Pop();
        else
        {
            if (_bufferCount == _buffers.Length) Array.Resize(ref _buffers, _buffers.Length * 2);
            id = _bufferCount++;
        }
        _buffers[id] = new Buffer { Iova = iova, Size = size, DmasLeft = _k.DmasPerMap, Pieces = 1 };
        return id;
    }

    void IDmaApiClient.OnMapped(long tag, ulong iova)
    {
        ref var buf = ref _buffers[tag];
        buf.Mapped = true;
        buf.DmaBase = iova;
        if (buf.DmasLeft > 0) _issue.Enqueue((int)tag);
        IssueDmas();
        if (_blocked) Pump();
    }

    void IDmaApiClient.OnUnmapped(long tag)
    {
        for (int i = 0; i < _unmapping.Count; i++)
            if (_unmapping[i].Id == tag) { _unmapping.RemoveAt(i); break; }
        if (_blocked) Pump();
    }

    /// <summary>Issues queued fault DMAs, then buffer DMAs in map order, while the device has free tags.</summary>
    private void IssueDmas()
    {
        while (_faults.Count > 0 && Device.CanIssue)
        {
            var (iova, write) = _faults.Dequeue();
            if (!TakeOperation(out bool measured)) { _faults.Clear(); break; }
            TryIssue(iova, 64, write, measured, FaultTag);
            FaultDmas++;
        }
        while (_issue.Count > 0 && Device.CanIssue)
        {
            int id = _issue.Peek();
            ref var buf = ref _buffers[id];
            if (!TakeOperation(out bool measured)) { _issue.Clear(); break; }
            int bytes = (int)Math.Min((ulong)_dmaBytes, buf.Size);
            ulong slots = buf.Size / (ulong)bytes;
            ulong offset = (ulong)buf.Issued % slots * (ulong)bytes;
            bool write = !(Random.NextDouble() < Options.ReadFraction);
            TryIssue(buf.DmaBase + offset, bytes, write, measured, id);
            buf.Issued++;
            buf.InFlight++;
            Dmas++;
            if (--buf.DmasLeft == 0) _issue.Dequeue();
        }
    }

    protected override void OnDmaDone(long tag, bool faulted)
    {
        if (tag == FaultTag)
        {
            if (faulted) FaultDmasFaulted++;
        }
        else _buffers[tag].InFlight--;
        if (FinishOperation(measured: true)) return;
        IssueDmas();
        if (_blocked) Pump();
    }

    public void Dispose() => _reader.Dispose();
}
