using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Time;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Workloads.DeviceModels;

namespace IommuSim.Workloads.Nvme;

/// <summary>
/// The NVMe host driver: one serial CPU context that builds commands (with <c>map-per-io</c>,
/// mapping the data buffer through the DMA API first), writes the SQ entry and rings the doorbell,
/// and handles completions (unmapping the buffer, freeing the command id). Data buffers are
/// I/O-size aligned slots of the window [iova, iova + workingSetBytes), random or sequential.
/// Open loop: arrived commands wait in a backlog while every command id is in use.
/// </summary>
internal sealed class NvmeHost : IDriverJobs, IDmaApiClient
{
    private const long JobNew = 0;
    private const long JobComplete = 1;

    private readonly NvmeWorkload _model;
    private readonly Scheduler _scheduler;
    private readonly NvmeQueuePair _qp;
    private readonly NvmeController _controller;
    private readonly NvmeOptions _nvme;
    private readonly NvmeStats _stats;
    private readonly SimRandom _random;
    private readonly DmaEngine _device;
    private readonly bool _closed;
    private readonly bool _mapPerIo;
    private readonly ulong _slots;
    private readonly Stack<int> _freeCids;
    private long _backlog;
    private ulong _seqNext;

    public NvmeHost(NvmeWorkload model, Scheduler scheduler, NvmeQueuePair qp, NvmeController controller, WorkloadOptions options,
        NvmeStats stats, SimRandom random, DmaEngine device)
    {
        _model = model;
        _scheduler = scheduler;
        _qp = qp;
        _controller = controller;
        _nvme = options.Nvme;
        _stats = stats;
        _random = random;
        _device = device;
        _closed = options.Arrival == "closed";
        _mapPerIo = _nvme.BufferPolicy == "map-per-io";
        _slots = (ulong)(options.WorkingSetBytes.Bytes / options.Bytes.Bytes);
        _freeCids = new Stack<int>(qp.Depth);
        for (int c = qp.Depth - 1; c >= 0; c--) _freeCids.Push(c);
        Cpu = new DriverCpu(scheduler, this, SimTime.FromNs(_nvme.HostNsPerCommand), 2 * qp.Depth);
    }

    /// <summary>The DMA API (map-per-io); set when the run starts.</summary>
    public IDmaApi? Api { get; set; }

    public DriverCpu Cpu { get; }

    /// <summary>Open loop: arrived commands waiting for a free command id.</summary>
    public TimeAverage Backlog { get; } = new();

    /// <summary>True once the run takes no more commands.</summary>
    public bool Exhausted { get; private set; }

    /// <summary>Open loop: <paramref name="count"/> commands arrive.</summary>
    public void Arrive(long count)
    {
        _backlog += count;
        StartCommands();
        if (Exhausted) _backlog = 0; // the run takes no more commands: these never arrived
        Backlog.Set(_scheduler.Now, _backlog);
    }

    /// <summary>Starts commands while a command id is free and there is work (closed loop: always).</summary>
    public void StartCommands()
    {
        while (!Exhausted && _freeCids.Count > 0 && (_closed || _backlog > 0))
        {
            if (!_model.TakeOperation(out bool measured))
            {
                Exhausted = true;
                return;
            }
            if (!_closed)
            {
                _backlog--;
                Backlog.Set(_scheduler.Now, _backlog);
            }
            int cid = _freeCids.Pop();
            _qp.Measured[cid] = measured;
            _qp.Faulted[cid] = false;
            _qp.IsRead[cid] = _random.NextDouble() < _nvme.ReadFraction;
            ulong slot;
            if (_nvme.Pattern == "sequential")
            {
                slot = _seqNext;
                _seqNext = _seqNext + 1 == _slots ? 0 : _seqNext + 1;
            }
            else slot = _random.NextBelow(_slots);
            _qp.DataIovaOf[cid] = _qp.DataIova + slot * (ulong)_qp.IoBytes;
            Cpu.Enqueue((JobNew << 32) | (uint)cid);
        }
    }

    /// <summary>The controller wrote command <paramref name="cid"/>'s CQ entry.</summary>
    public void Completed(int cid) => Cpu.Enqueue((JobComplete << 32) | (uint)cid);

    void IDriverJobs.RunJob(DriverCpu cpu, long job)
    {
        int cid = (int)(job & 0xFFFF_FFFF);
        if (job >> 32 == JobNew)
        {
            if (_mapPerIo)
            {
                cpu.BeginApiCall();
                // A read command's data is written by the device, a write command's read.
                Api!.Map(_device, _qp.IoBytes, _qp.IsRead[cid] ? Access.Write : Access.Read, this, job);
                return;
            }
            Submit(cid);
            cpu.JobDone();
            return;
        }
        if (_mapPerIo)
        {
            cpu.BeginApiCall();
            Api!.Unmap(_device, _qp.DataIovaOf[cid], _qp.IoBytes, this, job);
            return;
        }
        FreeCid(cid);
        cpu.JobDone();
    }

    void IDmaApiClient.OnMapped(long tag, ulong iova)
    {
        _stats.Maps++;
        _stats.MapLatency.Record(Cpu.ApiCallElapsedPs);
        int cid = (int)(tag & 0xFFFF_FFFF);
        _qp.DataIovaOf[cid] = iova;
        Submit(cid);
        Cpu.JobDone();
    }

    void IDmaApiClient.OnUnmapped(long tag)
    {
        _stats.Unmaps++;
        _stats.UnmapLatency.Record(Cpu.ApiCallElapsedPs);
        FreeCid((int)(tag & 0xFFFF_FFFF));
        Cpu.JobDone();
    }

    /// <summary>The host writes the SQ entry (and, for more than two pages, the PRP list) and rings the doorbell.</summary>
    private void Submit(int cid)
    {
        _qp.SubmitPs[cid] = _scheduler.Now;
        _qp.SqCid[_qp.SqTail % _qp.Depth] = cid;
        _qp.SqTail++;
        if (_qp.Measured[cid]) _stats.Submitted++;
        _qp.Outstanding.Set(_scheduler.Now, _qp.Outstanding.Value + 1);
        _controller.Pump();
    }

    private void FreeCid(int cid)
    {
        _freeCids.Push(cid);
        StartCommands();
    }
}
