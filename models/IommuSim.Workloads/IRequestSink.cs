namespace IommuSim.Workloads;

/// <summary>Observes every request a workload issues (for <c>--record-trace</c>).</summary>
public interface IRequestObserver
{
    void OnIssued(long timePs, string device, uint? pasid, ulong iova, int bytes, bool write);
}
