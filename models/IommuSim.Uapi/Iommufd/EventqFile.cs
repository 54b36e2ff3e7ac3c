namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// The anonymous file behind a fault or vEVENTQ fd (iommufd_eventq_init): while it is open it holds a reference on
/// its object, so IOMMU_DESTROY of a FAULT or VEVENTQ whose fd is still open is EBUSY, and one on the iommufd context
/// (iommufd_ctx_get), so closing /dev/iommu first leaves the context alive until the last event-queue fd is closed.
/// iommufd_eventq_fops_release drops both.
/// </summary>
public sealed class EventqFile
{
    internal EventqFile(IommufdObject queue) => Queue = queue;

    /// <summary>The FAULT or VEVENTQ object (eventq->obj).</summary>
    public IommufdObject Queue { get; }

    public bool Closed { get; private set; }

    /// <summary>iommufd_eventq_fops_release: refcount_dec(&amp;eventq->obj.users); iommufd_ctx_put(eventq->ictx).</summary>
    internal void Release()
    {
        if (Closed) return;
        Closed = true;
        Queue.Put();
        Queue.Context.EventqFileReleased(this);
    }
}
