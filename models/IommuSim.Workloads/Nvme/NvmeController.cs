using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Time;
using IommuSim.Workloads.DeviceModels;

namespace IommuSim.Workloads.Nvme;

/// <summary>
/// The NVMe controller: fetches SQ entries (64-byte DMA reads) once the doorbell rang, the PRP
/// list when a transfer touches more than two pages (8 bytes per page after the first), moves the
/// data (a read: media time, then a DMA write to host memory; a write: a DMA read, then media
/// time), and writes a 16-byte CQ entry. The media serves <c>mediaParallelism</c> commands at once;
/// DMAs of commands in progress are issued in order before new SQ fetches.
/// </summary>
internal sealed class NvmeController
{
    public const long TagSq = 1L << 32;
    public const long TagPrp = 2L << 32;
    public const long TagData = 3L << 32;
    public const long TagCq = 4L << 32;

    private readonly NvmeWorkload _model;
    private readonly Scheduler _scheduler;
    private readonly NvmeQueuePair _qp;
    private readonly NvmeStats _stats;
    private readonly int _mediaParallelism;
    private readonly long _readPs, _writePs;
    private readonly Queue<long> _pendingDma;
    private readonly Queue<int> _mediaQueue;
    private int _mediaBusy;

    public NvmeController(NvmeWorkload model, Scheduler scheduler, NvmeQueuePair qp, NvmeOptions nvme, NvmeStats stats)
    {
        _model = model;
        _scheduler = scheduler;
        _qp = qp;
        _stats = stats;
        _mediaParallelism = nvme.MediaParallelism;
        _readPs = SimTime.FromUs(nvme.ReadLatencyUs);
        _writePs = SimTime.FromUs(nvme.WriteLatencyUs);
        _pendingDma = new Queue<long>(4 * qp.Depth);
        _mediaQueue = new Queue<int>(qp.Depth);
    }

    /// <summary>The host that takes completions up.</summary>
    public NvmeHost Host { get; set; } = null!;

    /// <summary>Commands in the media (time-weighted, for utilisation).</summary>
    public TimeAverage Media { get; } = new();

    /// <summary>Issues DMAs of commands in progress (in order), then fetches new SQ entries.</summary>
    public void Pump()
    {
        while (_pendingDma.Count > 0)
        {
            if (!TryIssueFor(_pendingDma.Peek())) return;
            _pendingDma.Dequeue();
        }
        while (_qp.SqFetchIssued < _qp.SqTail)
        {
            if (!TryIssueFor(TagSq | (uint)_qp.SqCid[_qp.SqFetchIssued % _qp.Depth])) return;
            _qp.SqFetchIssued++;
        }
    }

    private void IssueOrQueue(long tag)
    {
        if (_pendingDma.Count > 0 || !TryIssueFor(tag)) _pendingDma.Enqueue(tag);
    }

    private bool TryIssueFor(long tag)
    {
        int cid = (int)(tag & 0xFFFF_FFFF);
        bool m = _qp.Measured[cid];
        switch (tag & ~0xFFFF_FFFFL)
        {
            case TagSq:
                if (!_model.TryIssue(_qp.SqIova + (ulong)(_qp.SqFetchIssued % _qp.Depth) * NvmeOptions.SqEntryBytes, NvmeOptions.SqEntryBytes, false, m, tag)) return false;
                _stats.SqEntryFetches++;
                return true;
            case TagPrp:
            {
                int bytes = (_qp.Pages(cid) - 1) * 8;
                if (!_model.TryIssue(_qp.PrpListIova + (ulong)cid * (ulong)_qp.PrpSlotBytes, bytes, false, m, tag)) return false;
                _stats.PrpListFetches++;
                _stats.PrpListBytes += bytes;
                return true;
            }
            case TagData:
                if (!_model.TryIssue(_qp.DataIovaOf[cid], _qp.IoBytes, _qp.IsRead[cid], m, tag)) return false;
                _stats.DataDmas++;
                return true;
            default:
                if (!_model.TryIssue(_qp.CqIova + (ulong)(_qp.CqTail % _qp.Depth) * NvmeOptions.CqEntryBytes, NvmeOptions.CqEntryBytes, true, m, tag)) return false;
                _qp.CqTail++;
                _stats.CqEntryWrites++;
                return true;
        }
    }

    public void OnDmaDone(long tag, bool faulted)
    {
        int cid = (int)(tag & 0xFFFF_FFFF);
        if (faulted)
        {
            _stats.DmaFaults++;
            _qp.Faulted[cid] = true;
        }
        switch (tag & ~0xFFFF_FFFFL)
        {
            case TagSq:
                if (_qp.Pages(cid) > 2) IssueOrQueue(TagPrp | (uint)cid);
                else DataAddressesKnown(cid);
                break;
            case TagPrp:
                DataAddressesKnown(cid);
                break;
            case TagData:
                if (_qp.IsRead[cid]) IssueOrQueue(TagCq | (uint)cid);
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
        if (_qp.IsRead[cid]) MediaStart(cid);
        else IssueOrQueue(TagData | (uint)cid);
    }

    private void MediaStart(int cid)
    {
        if (_mediaBusy >= _mediaParallelism)
        {
            _mediaQueue.Enqueue(cid);
            return;
        }
        _mediaBusy++;
        Media.Set(_scheduler.Now, _mediaBusy);
        _model.Schedule(_qp.IsRead[cid] ? _readPs : _writePs, NvmeWorkload.KindMediaDone, cid);
    }

    /// <summary>The media finished command <paramref name="cid"/>.</summary>
    public void MediaDone(int cid)
    {
        _mediaBusy--;
        Media.Set(_scheduler.Now, _mediaBusy);
        if (_mediaQueue.Count > 0) MediaStart(_mediaQueue.Dequeue());
        IssueOrQueue((_qp.IsRead[cid] ? TagData : TagCq) | (uint)cid);
        Pump();
    }

    private void CommandDone(int cid)
    {
        bool m = _qp.Measured[cid];
        _qp.Outstanding.Set(_scheduler.Now, _qp.Outstanding.Value - 1);
        if (m)
        {
            long lat = _scheduler.Now - _qp.SubmitPs[cid];
            _stats.Completed++;
            if (_qp.IsRead[cid])
            {
                _stats.Reads++;
                _stats.ReadLatency.Record(lat);
            }
            else
            {
                _stats.Writes++;
                _stats.WriteLatency.Record(lat);
            }
            if (_qp.Faulted[cid]) _stats.Faulted++;
            else _stats.Bytes += _qp.IoBytes;
            _stats.CommandLatency.Record(lat);
        }
        Host.Completed(cid);
        _model.FinishOperation(m);
    }
}
