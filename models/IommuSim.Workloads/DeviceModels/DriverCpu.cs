using IommuSim.Engine.Scheduling;

namespace IommuSim.Workloads.DeviceModels;

/// <summary>What a driver does with one job when its CPU gets to it.</summary>
public interface IDriverJobs
{
    /// <summary>Runs <paramref name="job"/>. The job ends with <see cref="DriverCpu.JobDone"/>, at once or
    /// from a DMA-API completion later.</summary>
    void RunJob(DriverCpu cpu, long job);
}

/// <summary>
/// One serial CPU context of a device driver: a NAPI poll loop on its own core, an NVMe
/// submission/completion thread. Jobs (a 64-bit word the driver defines) wait in FIFO order; each
/// costs <c>jobPs</c> of CPU time before it runs, and the next starts only once the running one
/// said <see cref="JobDone"/>, so a driver blocked in a strict unmap holds its CPU. Every job starts
/// through the scheduler, so DMA-API callbacks that arrive synchronously never nest jobs.
/// </summary>
public sealed class DriverCpu : IEventHandler
{
    private readonly Scheduler _scheduler;
    private readonly IDriverJobs _driver;
    private readonly long _jobPs;
    private readonly Queue<long> _jobs;
    private bool _busy;
    private long _apiCallPs;

    public DriverCpu(Scheduler scheduler, IDriverJobs driver, long jobPs, int capacity, int index = 0)
    {
        _scheduler = scheduler;
        _driver = driver;
        _jobPs = Math.Max(0, jobPs);
        _jobs = new Queue<long>(capacity);
        Index = index;
    }

    /// <summary>Which of its driver's CPUs this is (the queue it serves).</summary>
    public int Index { get; }

    /// <summary>1 while a job runs or waits for the DMA API, else 0.</summary>
    public TimeAverage BusyTime { get; } = new();

    public void Enqueue(long job)
    {
        _jobs.Enqueue(job);
        Kick();
    }

    /// <summary>The running job finished: the CPU takes the next one.</summary>
    public void JobDone()
    {
        _busy = false;
        BusyTime.Set(_scheduler.Now, 0);
        Kick();
    }

    /// <summary>Marks the start of a DMA-API call made by the running job.</summary>
    public void BeginApiCall() => _apiCallPs = _scheduler.Now;

    /// <summary>Time since <see cref="BeginApiCall"/> (the call's latency when it completes).</summary>
    public long ApiCallElapsedPs => _scheduler.Now - _apiCallPs;

    private void Kick()
    {
        if (_busy || _jobs.Count == 0) return;
        _busy = true;
        BusyTime.Set(_scheduler.Now, 1);
        _scheduler.ScheduleIn(_jobPs, this, 0, _jobs.Dequeue());
    }

    void IEventHandler.OnEvent(int kind, long arg, object? payload) => _driver.RunJob(this, arg);
}
