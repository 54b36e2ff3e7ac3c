namespace IommuSim.Workloads;

/// <summary>
/// The run's request accounting shared by all workloads: the first <c>warmupRequests</c> issued
/// are warm-up, the next <c>maxRequests</c> are measured (0 = no limit). When the last warm-up
/// request is handed out the measured phase begins (stats reset); when every measured request
/// has completed the run ends.
/// </summary>
public sealed class RequestBudget(long warmup, long measured)
{
    private long _warmupLeft = warmup;
    private long _measuredLeft = measured;

    public bool Unlimited { get; } = measured == 0;
    public long MeasuredIssued { get; private set; }
    public long MeasuredCompleted { get; private set; }
    public bool WarmupDone => _warmupLeft == 0;

    /// <summary>Raised when the first measured request is about to be issued.</summary>
    public event Action? MeasuredPhaseStarting;

    /// <summary>Takes one request; false when the run has issued all it will.</summary>
    public bool TryTake(out bool measured)
    {
        if (_warmupLeft > 0)
        {
            _warmupLeft--;
            measured = false;
            return true;
        }
        if (!Unlimited && _measuredLeft == 0)
        {
            measured = false;
            return false;
        }
        if (MeasuredIssued == 0) MeasuredPhaseStarting?.Invoke();
        if (!Unlimited) _measuredLeft--;
        MeasuredIssued++;
        measured = true;
        return true;
    }

    public void OnMeasuredCompleted() => MeasuredCompleted++;

    /// <summary>Time the last warm-up request completed (throughput is measured from when the warm-up traffic has drained).</summary>
    public long LastWarmupCompletionPs { get; private set; }

    public void OnWarmupCompleted(long nowPs) => LastWarmupCompletionPs = Math.Max(LastWarmupCompletionPs, nowPs);

    /// <summary>All measured requests issued and completed (never true when unlimited).</summary>
    public bool Finished => !Unlimited && _measuredLeft == 0 && MeasuredCompleted == MeasuredIssued;
}
