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
}
