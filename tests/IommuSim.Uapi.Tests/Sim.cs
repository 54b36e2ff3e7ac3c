using IommuSim.Hardware;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests;

/// <summary>A fresh simulated machine, kernel and process with one open iommufd, for tests.</summary>
internal sealed class Sim
{
    public static readonly RequesterId Dev3 = new(3, 0, 0);
    public static readonly RequesterId Dev4 = new(4, 0, 0);

    public Sim(PlatformSpec? spec = null, IommuOptions? iommu = null)
    {
        Spec = spec ?? new PlatformSpec();
        Platform = PlatformPort.CreatePlatform(Spec, iommu);
        Port = new PlatformPort(Platform);
        Kernel = new IommuKernel(Port, Spec);
        Process = new UserProcess(Kernel);
        Process.OpenIommufd(out var ictx);
        Ctx = ictx;
    }

    public PlatformSpec Spec { get; }
    public Platform Platform { get; }
    public PlatformPort Port { get; }
    public IommuKernel Kernel { get; }
    public UserProcess Process { get; }
    public IommufdContext Ctx { get; }

    public DeviceSpec Device(RequesterId rid) => Kernel.FindDevice(rid)!;

    public uint IoasAlloc()
    {
        var c = new IommuIoasAlloc();
        Assert.Equal(Errno.OK, Ctx.IoasAlloc(c));
        return c.out_ioas_id;
    }

    public IommufdDevice Bind(RequesterId rid)
    {
        Assert.Equal(Errno.OK, Ctx.DeviceBind(Device(rid), out var idev));
        return idev;
    }

    public Errno Attach(IommufdDevice idev, uint ptId, out uint hwptId, uint pasid = 0)
    {
        uint pt = ptId;
        var rc = Ctx.DeviceAttach(idev, pasid, ref pt);
        hwptId = pt;
        return rc;
    }

    public ulong Mmap(ulong length, bool writable = true) => Process.Mm.Mmap(length, writable);

    public Errno Map(uint ioas, ulong va, ulong length, ulong iova, uint flags = IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE)
        => Ctx.IoasMap(new IommuIoasMap { ioas_id = ioas, user_va = va, length = length, iova = iova, flags = flags });

    public Errno MapAuto(uint ioas, ulong va, ulong length, out ulong iova, uint flags = IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE)
    {
        var c = new IommuIoasMap { ioas_id = ioas, user_va = va, length = length, flags = flags };
        var rc = Ctx.IoasMap(c);
        iova = c.iova;
        return rc;
    }

    public Errno Unmap(uint ioas, ulong iova, ulong length) => Ctx.IoasUnmap(new IommuIoasUnmap { ioas_id = ioas, iova = iova, length = length });

    public DmaOutcome Dma(RequesterId rid, ulong iova, Access op = Access.Read, uint? pasid = null, int bytes = 64)
        => Port.ExecuteDma(rid, pasid, iova, bytes, op);

    public Ioas IoasObj(uint id) => (Ioas)Ctx.Lookup(id)!;
}
