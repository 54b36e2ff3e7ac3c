using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Memory;
using IommuSim.Uapi.Vfio;
using IommuSim.Uapi.Vm;

namespace IommuSim.Uapi;

/// <summary>
/// A simulated user process (a VMM, a DPDK program, a legacy VFIO program): its address space and
/// its file descriptors (/dev/iommu, /dev/vfio/vfio containers, /dev/vfio/N groups, VFIO device
/// files). The fd-level checks (EBADF, EBADFD, one open per group) live here, the ioctls' own
/// checks in the objects behind the fds.
/// </summary>
public sealed class UserProcess
{
    private readonly Dictionary<int, object> _fds = [];
    private int _nextFd = 3;

    public UserProcess(IommuKernel kernel)
    {
        Kernel = kernel;
        Mm = kernel.NewAddressSpace();
    }

    public IommuKernel Kernel { get; }
    public UserAddressSpace Mm { get; }

    public object? File(int fd) => _fds.GetValueOrDefault(fd);

    private int Install(object file)
    {
        int fd = _nextFd++;
        _fds[fd] = file;
        return fd;
    }

    /// <summary>open("/dev/iommu").</summary>
    public int OpenIommufd(out IommufdContext ictx)
    {
        ictx = Kernel.OpenIommufd(Mm);
        ictx.Fget = File;
        ictx.InstallFile = Install;
        return Install(ictx);
    }

    /// <summary>open("/dev/vfio/vfio"): with the iommufd compat container this is an iommufd context too, one that
    /// charges pinned pages per process (mm->locked_vm) like VFIO type1.</summary>
    public int OpenContainer(out IommufdContext ictx)
    {
        int fd = OpenIommufd(out ictx);
        ictx.UseVfioAccounting();
        return fd;
    }

    public IommufdContext? Iommufd(int fd) => File(fd) as IommufdContext;

    public VfioGroupFile? Group(int fd) => File(fd) as VfioGroupFile;

    public VfioDeviceFile? DeviceFile(int fd) => File(fd) as VfioDeviceFile;

    /// <summary>The VFIO cdev bound in <paramref name="ictx"/> with device id <paramref name="devid"/>.</summary>
    public VfioDeviceFile? DeviceFileByDevid(IommufdContext ictx, uint devid)
        => _fds.Values.OfType<VfioDeviceFile>().FirstOrDefault(f => f.Idev is { } i && i.Context == ictx && i.Id == devid);

    /// <summary>open("/dev/vfio/N"): ENOENT for no such group, EBUSY when already open.</summary>
    public Errno OpenGroup(int group, out int fd)
    {
        fd = -1;
        if (!Kernel.GroupExists(group)) return Errno.ENOENT;
        if (_fds.Values.OfType<VfioGroupFile>().Any(g => g.Number == group)) return Errno.EBUSY;
        fd = Install(new VfioGroupFile(group));
        return Errno.OK;
    }

    /// <summary>VFIO_GROUP_GET_STATUS.</summary>
    public Errno GroupGetStatus(int groupFd, VfioGroupStatus status)
    {
        if (Group(groupFd) is not { } g) return File(groupFd) is null ? Errno.EBADF : Errno.ENOTTY;
        status.flags = VfioConst.VFIO_GROUP_FLAGS_VIABLE | (g.Container is not null ? VfioConst.VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
        return Errno.OK;
    }

    /// <summary>
    /// VFIO_GROUP_SET_CONTAINER with an iommufd: EINVAL when the group already has one, EBADF
    /// for a closed fd, EBADFD for an fd that is no container; creates the compat IOAS if needed.
    /// </summary>
    public Errno GroupSetContainer(int groupFd, int containerFd)
    {
        if (Group(groupFd) is not { } g) return File(groupFd) is null ? Errno.EBADF : Errno.ENOTTY;
        if (g.Container is not null) return Errno.EINVAL;
        if (!Kernel.GroupExists(g.Number)) return Errno.ENODEV;
        var file = File(containerFd);
        if (file is null) return Errno.EBADF;
        if (file is not IommufdContext ictx) return Errno.EBADFD;
        ictx.CompatIoasGetOrCreate();
        g.Container = ictx;
        return Errno.OK;
    }

    /// <summary>VFIO_GROUP_UNSET_CONTAINER: only once its devices are closed (EBUSY).</summary>
    public Errno GroupUnsetContainer(int groupFd)
    {
        if (Group(groupFd) is not { } g) return Errno.EBADF;
        if (g.Container is null) return Errno.EINVAL;
        if (g.Devices.Any(d => !d.Closed)) return Errno.EBUSY;
        g.Container = null;
        return Errno.OK;
    }

    /// <summary>
    /// VFIO_GROUP_GET_DEVICE_FD: needs a container (EINVAL); the device must be in the group
    /// (ENODEV). Opening binds it to the container's iommufd and attaches it to the compat IOAS.
    /// </summary>
    public Errno GroupGetDeviceFd(int groupFd, string name, out int fd)
    {
        fd = -1;
        if (Group(groupFd) is not { } g) return Errno.EBADF;
        if (g.Container is null) return Errno.EINVAL;
        var spec = Kernel.FindDevice(name);
        if (spec is null || spec.IommuGroup != g.Number) return Errno.ENODEV;
        if (IsOpen(spec)) return Errno.EBUSY;
        var file = new VfioDeviceFile(spec, viaGroup: true);
        Errno rc = file.OpenInContainer(g.Container);
        if (rc != Errno.OK) return rc;
        g.Devices.Add(file);
        fd = Install(file);
        return Errno.OK;
    }

    /// <summary>open("/dev/vfio/devices/vfioX") for a device: EBUSY if it is already open.</summary>
    public Errno OpenDeviceCdev(DeviceSpec spec, out int fd)
    {
        fd = -1;
        if (IsOpen(spec)) return Errno.EBUSY;
        fd = Install(new VfioDeviceFile(spec, viaGroup: false));
        return Errno.OK;
    }

    private bool IsOpen(DeviceSpec spec) => _fds.Values.OfType<VfioDeviceFile>().Any(f => f.Spec == spec && !f.Closed);

    /// <summary>memfd_create + ftruncate: a new memfd of <paramref name="size"/> bytes and its fd.</summary>
    public int CreateMemfd(ulong size, out Memfd file)
    {
        file = Mm.CreateMemfd(size);
        return Install(file);
    }

    /// <summary>memfd_create + ftruncate as a call: EINVAL/ENOMEM (<see cref="UserAddressSpace.TryCreateMemfd"/>) or the new fd.</summary>
    public Errno TryCreateMemfd(ulong size, out int fd, out Memfd file)
    {
        fd = -1;
        Errno rc = Mm.TryCreateMemfd(size, out file);
        if (rc == Errno.OK) fd = Install(file);
        return rc;
    }

    /// <summary>VM_CREATE: guest RAM is new memory of this process.</summary>
    public VirtualMachine CreateVm(ulong memoryBytes, ulong ramAlignment = UserAddressSpace.HugePageSize)
        => new(Mm, Kernel.Port.Memory, memoryBytes, ramAlignment);

    /// <summary>exit(): every fd is closed, lowest first.</summary>
    public void Exit()
    {
        foreach (int fd in _fds.Keys.Order().ToList()) Close(fd);
    }

    /// <summary>close(fd): device files unbind, contexts destroy their objects (once no event-queue fd holds them),
    /// fault and vEVENTQ fds drop their references.</summary>
    public Errno Close(int fd)
    {
        if (!_fds.Remove(fd, out var file)) return Errno.EBADF;
        switch (file)
        {
            case VfioDeviceFile d: d.Close(); break;
            case IommufdContext c: c.ReleaseFd(); break;
            case EventqFile e: e.Release(); break;
            case VfioGroupFile g:
                foreach (var d in g.Devices) d.Close();
                break;
        }
        return Errno.OK;
    }
}
