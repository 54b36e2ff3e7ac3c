namespace IommuSim.Hardware.Iommu.Faults;

/// <summary>
/// The page request queue (VT-d spec §7.5): page request descriptors (§7.5.1) from ATS/PRI devices,
/// in arrival order, for software to read and answer with a page group response through the
/// invalidation queue (§7.7). Unbounded here: software drains it on the page-request interrupt.
/// </summary>
public sealed class PageRequestQueue
{
    private readonly Queue<PageRequest> _requests = new();

    /// <summary>Page requests received since the last counter reset.</summary>
    public long Count { get; private set; }
    /// <summary>Descriptors software has not read yet.</summary>
    public int Pending => _requests.Count;

    /// <summary>A page request message arrived: its page request descriptor is written to the queue.</summary>
    public void Receive(Pcie.Tlp message, long nowPs)
        => Record(new PageRequest(nowPs, message.RequesterId, message.Pasid, message.HasPasid, message.Address, message.Access,
            message.PageGroupIndex, LastInGroup: true));

    public void Record(in PageRequest pr)
    {
        Count++;
        _requests.Enqueue(pr);
    }

    public bool TryRead(out PageRequest pr) => _requests.TryDequeue(out pr);

    /// <summary>Zero the counter (warm-up); pending descriptors stay for software.</summary>
    public void ResetCounters() => Count = 0;
}
