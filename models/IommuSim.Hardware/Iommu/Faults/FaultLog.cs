namespace IommuSim.Hardware.Iommu.Faults;

/// <summary>
/// The IOMMU's fault recording: counts every fault by reason (for results) and keeps the most
/// recent <see cref="Capacity"/> records for software (the uAPI layer) to read, like the VT-d
/// fault recording registers; page requests go to their own queue.
/// </summary>
public sealed class FaultLog(int capacity = 256)
{
    private readonly Queue<FaultRecord> _records = new();
    private readonly Queue<PageRequest> _pageRequests = new();
    private readonly long[] _byReason = new long[Enum.GetValues<FaultReason>().Length];

    public int Capacity { get; } = capacity;
    public long Count { get; private set; }
    public long Overflows { get; private set; }
    public long PageRequestCount { get; private set; }

    public long CountOf(FaultReason r) => _byReason[(int)r];

    public void Record(in FaultRecord f)
    {
        Count++;
        _byReason[(int)f.Reason]++;
        if (_records.Count >= Capacity)
        {
            _records.Dequeue();
            Overflows++;
        }
        _records.Enqueue(f);
    }

    public void RecordPageRequest(in PageRequest pr)
    {
        PageRequestCount++;
        _pageRequests.Enqueue(pr);
    }

    public bool TryReadFault(out FaultRecord f) => _records.TryDequeue(out f);
    public bool TryReadPageRequest(out PageRequest pr) => _pageRequests.TryDequeue(out pr);
    public int PendingPageRequests => _pageRequests.Count;

    /// <summary>Zero the counters (warm-up); pending records stay for software.</summary>
    public void ResetCounters()
    {
        Count = 0;
        Overflows = 0;
        PageRequestCount = 0;
        Array.Clear(_byReason);
    }
}
