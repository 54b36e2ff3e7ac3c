using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests;

/// <summary>iommufd.md section 6: PASID attach rules.</summary>
public class PasidTests
{
    private static uint PagingHwpt(Sim s, IommufdDevice dev, uint ioas, bool pasid)
    {
        var c = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = pasid ? IommuHwptAllocFlags.PASID : 0 };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(c));
        return c.out_hwpt_id;
    }

    [Fact]
    public void PasidAttach_WritesItsOwnPasidEntry_AndDmaWithThatPasidTranslates()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 0x1000, 0x100000));
        var dev = s.Bind(Sim.Dev3);
        uint h = PagingHwpt(s, dev, ioas, pasid: true);
        Assert.Equal(Errno.OK, s.Attach(dev, h, out _, pasid: 5));
        Assert.True(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 5).Present);
        Assert.False(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).Present);
        var r = s.Dma(Sim.Dev3, 0x100000, pasid: 5);
        Assert.False(r.Faulted, r.Reason.ToString());
        Assert.Equal(s.Process.Mm.Translate(buf), r.PhysicalAddress);
        Assert.True(s.Dma(Sim.Dev3, 0x100000).Faulted);            // the RID is not attached
    }

    [Fact]
    public void PasidRules()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        uint compat = PagingHwpt(s, dev, ioas, pasid: true);
        uint plain = PagingHwpt(s, dev, ioas, pasid: false);

        Assert.Equal(Errno.EINVAL, s.Attach(dev, ioas, out _, pasid: 1));        // an IOAS as a PASID's target
        Assert.Equal(Errno.EINVAL, s.Attach(dev, plain, out _, pasid: 1));       // not PASID-compatible
        Assert.Equal(Errno.EINVAL, s.Attach(dev, compat, out _, pasid: 1u << 20)); // beyond the device's PASID width

        // The RID on a non-compatible HWPT blocks PASID attachments ...
        Assert.Equal(Errno.OK, s.Attach(dev, plain, out _));
        Assert.Equal(Errno.EINVAL, s.Attach(dev, compat, out _, pasid: 1));
        uint pt = compat;
        Assert.Equal(Errno.OK, s.Ctx.DeviceReplace(dev, 0, ref pt));
        Assert.Equal(Errno.OK, s.Attach(dev, compat, out _, pasid: 1));
        Assert.Equal(Errno.EBUSY, s.Attach(dev, compat, out _, pasid: 1));      // already attached
        // ... and with PASIDs attached the RID cannot move to a non-compatible HWPT.
        pt = plain;
        Assert.Equal(Errno.EINVAL, s.Ctx.DeviceReplace(dev, 0, ref pt));
        pt = compat;
        Assert.Equal(Errno.EINVAL, s.Ctx.DeviceReplace(dev, 2, ref pt));        // replace on an unattached PASID
        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(dev, 1));
        pt = plain;
        Assert.Equal(Errno.OK, s.Ctx.DeviceReplace(dev, 0, ref pt));
    }

    [Fact]
    public void PasidAttachment_ReservesNothing()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        uint h = PagingHwpt(s, dev, ioas, pasid: true);
        int before = s.IoasObj(ioas).Iopt.Reserved.Count;
        Assert.Equal(Errno.OK, s.Attach(dev, h, out _, pasid: 9));
        Assert.Equal(before, s.IoasObj(ioas).Iopt.Reserved.Count);
    }

    /// <summary>iommufd_hwpt_paging_alloc only records pasid_compat, and intel_iommu_domain_alloc_paging_flags accepts
    /// IOMMU_HWPT_ALLOC_PASID whatever the device: the flag is not checked against the device's PASID support.</summary>
    [Fact]
    public void HwptAllocPasid_OnADeviceWithoutPasid_Succeeds_AsTheKernelDoesNotCheck()
    {
        var s = new Sim(new PlatformSpec { Devices = [DeviceSpec.Parse("0000:03:00.0", 3, pasidBits: 0)] });
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        var c = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.PASID };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(c));
        Assert.True(((HwptPaging)s.Ctx.Lookup(c.out_hwpt_id)!).PasidCompat);
    }
}
