using IommuSim.Uapi.Hardware;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests;

/// <summary>
/// The fds of FAULT and VEVENTQ objects (eventq.c): iommufd_eventq_init takes a reference on the object
/// (refcount_inc(&amp;eventq->obj.users)) and on the context (iommufd_ctx_get); iommufd_eventq_fops_release drops both.
/// So IOMMU_DESTROY of an object whose fd is open fails in iommufd_object_remove (refcount_dec_if_one) with EBUSY, and
/// closing /dev/iommu first does not release the context until the last event-queue fd is closed.
/// </summary>
public class EventqFdTests
{
    private static Errno Destroy(Sim s, uint id) => s.Ctx.Destroy(new IommuDestroy { id = id });

    [Fact]
    public void An_open_fault_fd_holds_its_fault_object()
    {
        var s = new Sim();
        var fa = new IommuFaultAlloc();
        Assert.Equal(Errno.OK, s.Ctx.FaultQueueAlloc(fa));
        Assert.IsType<EventqFile>(s.Process.File((int)fa.out_fault_fd));
        Assert.Equal(Errno.EBUSY, Destroy(s, fa.out_fault_id));
        Assert.Equal(Errno.OK, s.Process.Close((int)fa.out_fault_fd));
        Assert.Equal(Errno.EBADF, s.Process.Close((int)fa.out_fault_fd));
        Assert.Equal(Errno.OK, Destroy(s, fa.out_fault_id));
        Assert.Equal(Errno.ENOENT, Destroy(s, fa.out_fault_id));
    }

    [Fact]
    public void Closing_the_iommufd_first_keeps_the_context_until_the_last_eventq_fd_closes()
    {
        var s = new Sim();
        var fa = new IommuFaultAlloc();
        Assert.Equal(Errno.OK, s.Ctx.FaultQueueAlloc(fa));
        uint ioas = s.IoasAlloc();
        int iommufd = s.Process.OpenIommufd(out var other);
        Assert.Equal(Errno.OK, other.FaultQueueAlloc(new IommuFaultAlloc()));
        // fd 3 is the Sim's context: iommufd_fops_release cannot run while the fault fd holds the file.
        Assert.Equal(Errno.OK, s.Process.Close(3));
        Assert.False(s.Ctx.Closed);
        Assert.NotNull(s.Ctx.Lookup(ioas));
        Assert.Equal(Errno.OK, s.Process.Close((int)fa.out_fault_fd));
        Assert.True(s.Ctx.Closed);
        Assert.Null(s.Ctx.Lookup(ioas));
        Assert.False(other.Closed);                                   // another context is not touched
        Assert.Equal(Errno.OK, s.Process.Close(iommufd));
        Assert.False(other.Closed);
    }

    /// <summary>iommufd_compose_fault_message: length is 0 (the kernel reports the faulting page by addr only).</summary>
    [Fact]
    public void Fault_records_carry_length_zero()
    {
        var (s, fault, _, _, _) = DirtyFaultInfoTests.FaultSetup();
        s.Port.PageRequests.Record(new PageRequest(0, Sim.Dev3.Value, 0, false, 0x5123, Access.Read, 1, true));
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 4, out var faults));
        var f = Assert.Single(faults);
        Assert.Equal(0x5000ul, f.addr);
        Assert.Equal(0u, f.length);
    }
}
