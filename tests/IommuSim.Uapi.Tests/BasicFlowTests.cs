using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests;

public class BasicFlowTests
{
    [Fact]
    public void MapAttachDma_TranslatesToPinnedPage_AndFaultsAfterUnmap()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 0x4000, 0x100000));
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out uint hwpt));
        Assert.NotEqual(ioas, hwpt);
        Assert.IsType<HwptPaging>(s.Ctx.Lookup(hwpt));

        var r = s.Dma(Sim.Dev3, 0x100040, Access.Write);
        Assert.False(r.Faulted, r.Reason.ToString());
        Assert.Equal(s.Process.Mm.Translate(buf + 0x40), r.PhysicalAddress);

        var pe = s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0);
        Assert.True(pe.Present);
        Assert.Equal(Pgtt.SecondStage, pe.Pgtt);

        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x100000, 0x4000));
        var after = s.Dma(Sim.Dev3, 0x100040, Access.Write);
        Assert.True(after.Faulted);
        Assert.Equal(FaultReason.SecondStageNotPresent, after.Reason);
    }

    [Fact]
    public void UnattachedDevice_Faults()
    {
        var s = new Sim();
        var r = s.Dma(Sim.Dev4, 0x1000);
        Assert.True(r.Faulted);
        Assert.Equal(FaultReason.ContextNotPresent, r.Reason);
    }

    [Fact]
    public void StrictUnmap_OfAnAtsDevice_InvalidatesItsDeviceTlb_AndWaitsInSimulatedTime()
    {
        var s = new Sim(new Hardware.PlatformSpec { Devices = [new Hardware.DeviceSpec(Sim.Dev3, 3, Ats: true)] });
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x2000), 0x2000, 0x100000));
        Assert.Equal(Errno.OK, s.Attach(s.Bind(Sim.Dev3), ioas, out _));
        Assert.True(s.Port.Tables.ReadContext(Sim.Dev3).DeviceTlbEnable);
        Assert.False(s.Dma(Sim.Dev3, 0x100000, Access.Read).Faulted);
        long devTlb = s.Platform.Iommu.DeviceTlbInvalidations;
        long before = s.Port.NowPs;
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x100000, 0x2000));
        Assert.True(s.Platform.Iommu.DeviceTlbInvalidations > devTlb);
        Assert.True(s.Port.NowPs > before);     // the call returned only after the wait descriptor completed
        Assert.True(s.Dma(Sim.Dev3, 0x100000, Access.Read).Faulted);
    }
}
