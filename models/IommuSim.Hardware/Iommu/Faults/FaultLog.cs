namespace IommuSim.Hardware.Iommu.Faults;

/// <summary>
/// Fault recording (VT-d spec §7.4.1, primary fault logging): non-recoverable faults of untranslated
/// requests are written to the fault recording registers, here the most recent <see cref="Capacity"/>
/// records, for software (the uAPI layer) to read; older ones are lost (overflow, FSTS.PFO). Counts
/// every fault by reason for results. Page requests go to the <see cref="PageRequestQueue"/>.
/// </summary>
public sealed class FaultLog(int capacity = 256)
{
    private readonly Queue<FaultRecord> _records = new();
    private readonly long[] _byReason = new long[Enum.GetValues<FaultReason>().Length];

    public int Capacity { get; } = capacity;
    public long Count { get; private set; }
    public long Overflows { get; private set; }

    public long CountOf(FaultReason r) => _byReason[(int)r];

    /// <summary>Records a fault of <paramref name="request"/>: source id, PASID, address, access and reason.</summary>
    public void Record(Pcie.Tlp request, FaultReason reason, long nowPs)
        => Record(new FaultRecord(nowPs, request.RequesterId, request.Pasid, request.HasPasid, request.Address, request.Access, reason));

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

    public bool TryReadFault(out FaultRecord f) => _records.TryDequeue(out f);

    /// <summary>Zero the counters (warm-up); pending records stay for software.</summary>
    public void ResetCounters()
    {
        Count = 0;
        Overflows = 0;
        Array.Clear(_byReason);
    }
}
