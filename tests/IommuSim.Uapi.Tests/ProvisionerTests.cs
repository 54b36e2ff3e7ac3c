using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests;

public class ProvisionerTests
{
    private static readonly DmaRegion[] Regions = [new(0x1_0000_0000, 0x40_0000), new(0x2_0000_0000, 0x3000)];

    private static (ProvisionedSystem Sys, IommuSim.Hardware.Platform Hw) Build(string design, string via, StageSpec? s1 = null, StageSpec? s2 = null,
        IommuOptions? iommu = null, uint? pasid = null)
    {
        var spec = new PlatformSpec();
        var hw = PlatformPort.CreatePlatform(spec, iommu);
        var req = new ProvisionRequest(design, s1 ?? new StageSpec(4, PageSize.Size4K), s2 ?? new StageSpec(4, PageSize.Size4K),
            [new VmSpec("vm0", 256UL << 20)],
            [new DeviceProvision(Sim.Dev3, via, Regions, "vm0", pasid), new DeviceProvision(Sim.Dev4, via, Regions, "vm0")]);
        return (SystemProvisioner.Provision(hw, req), hw);
    }

    public static TheoryData<string, string> Designs() => new()
    {
        { "single-stage", "kernel" },
        { "single-stage", "iommufd" },
        { "single-stage", "vfio-container" },
        { "nested", "iommufd" },
        { "shadow", "iommufd" },
        { "passthrough", "kernel" },
    };

    [Theory]
    [MemberData(nameof(Designs))]
    public void EveryDesign_LeavesTablesReadyForDma_ToTheProvisionedMemory(string design, string via)
    {
        var (sys, hw) = Build(design, via);
        foreach (var (rid, pd) in sys.Devices)
        {
            foreach (var region in pd.Regions)
            {
                foreach (ulong off in new ulong[] { 0, 0x1040, region.Bytes - 64 })
                {
                    var r = hw.ExecuteDma(rid, null, region.Iova + off, 64, Access.Write);
                    Assert.False(r.Faulted, $"{design}/{via} {rid} 0x{region.Iova + off:x}: {r.Reason}");
                    Assert.Equal(design == "passthrough" ? region.Iova + off : region.HostPhysical + off, r.PhysicalAddress);
                }
            }
            var pe = hw.Iommu.Tables.ReadPasidEntry(rid, 0);
            if (design == "passthrough") Assert.Null(pd.Table);
            else
            {
                // The device's table and DID are the ones the hardware entry points at.
                Assert.NotNull(pd.Table);
                Assert.Equal(pe.DomainId, pd.DomainId);
                Assert.Equal(design == "nested" ? pe.FirstStageTable : pe.SecondStageTable, pd.Table!.RootAddress);
            }
            Assert.Equal(design switch { "nested" => Pgtt.Nested, "passthrough" => Pgtt.PassThrough, _ => Pgtt.SecondStage }, pe.Pgtt);
        }
        // Outside the regions nothing is reachable (except in pass-through).
        if (design != "passthrough") Assert.True(hw.ExecuteDma(Sim.Dev3, null, 0x3_0000_0000, 64, Access.Read).Faulted);
    }

    [Fact]
    public void SingleStage_KernelIommufdAndVfioContainer_ProgramTheSameTableShape()
    {
        var shapes = new List<List<(ulong, ulong, Access, PageSize)>>();
        var entries = new List<(Pgtt, int, bool)>();
        foreach (var via in new[] { "kernel", "iommufd", "vfio-container" })
        {
            foreach (var s2 in new[] { PageSize.Size4K, PageSize.Size2M })
            {
                var (sys, hw) = Build("single-stage", via, s2: new StageSpec(4, s2));
                var pd = sys.Devices[Sim.Dev3];
                var table = (pd.KernelDomain as IommuSim.Uapi.Driver.VtdPagingDomain)?.Table ?? ((IommuSim.Uapi.Driver.VtdPagingDomain)((IommuSim.Uapi.Iommufd.HwptPaging)pd.Context!.Lookup(pd.HwptId)!).PagingDomain).Table;
                var shape = new List<(ulong, ulong, Access, PageSize)>();
                foreach (var region in pd.Regions)
                {
                    for (ulong iova = region.Iova; iova < region.Iova + region.Bytes; iova += 0x1000)
                    {
                        Assert.True(table.TryTranslate(iova, out ulong pa, out var acc, out var size));
                        shape.Add((iova, pa - region.HostPhysical, acc, size));
                    }
                }
                if (via == "kernel") shapes.Add(shape);
                else Assert.Equal(shapes[s2 == PageSize.Size4K ? 0 : 1], shape);
                var pe = hw.Iommu.Tables.ReadPasidEntry(Sim.Dev3, 0);
                entries.Add((pe.Pgtt, pe.SecondStageLevels, pe.Present));
            }
        }
        Assert.Single(entries.Distinct());
        Assert.Contains(shapes[1], x => x.Item4 == PageSize.Size2M);
        Assert.DoesNotContain(shapes[0], x => x.Item4 != PageSize.Size4K);
    }

    [Fact]
    public void Nested_4x4_ColdDma_Reads24Entries_WithWalkCachesOff()
    {
        var (sys, hw) = Build("nested", "iommufd", iommu: new IommuOptions { WalkCaches = new WalkCacheOptions { Enabled = false } });
        var r = hw.ExecuteDma(Sim.Dev3, null, Regions[0].Iova, 64, Access.Read);
        Assert.False(r.Faulted);
        Assert.Equal(24, r.WalkReads);
        Assert.NotEqual(0ul, sys.Devices[Sim.Dev3].GuestPgtbl);
    }

    [Fact]
    public void PasidAttachment_IsProvisionedOnThatPasid()
    {
        var (sys, hw) = Build("single-stage", "iommufd", pasid: 7);
        Assert.True(hw.Iommu.Tables.ReadPasidEntry(Sim.Dev3, 7).Present);
        Assert.False(hw.ExecuteDma(Sim.Dev3, 7, Regions[0].Iova, 64, Access.Read).Faulted);
        Assert.Equal(7u, sys.Devices[Sim.Dev3].Pasid);
    }

    [Fact]
    public void UnsupportedCombinations_AreRefusedWithAClearMessage()
    {
        var e = Assert.Throws<ArgumentException>(() => Build("nested", "vfio-container"));
        Assert.Contains("attach.via", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Build("single-stage", "vfio-container", pasid: 3));
        Assert.Throws<ArgumentException>(() => Build("warp-drive", "kernel"));
    }

    [Fact]
    public void Nested_4GiBVm_MapsRamAroundTheMsiHole_AndReachesA64MiBRegion()
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec());
        var req = new ProvisionRequest("nested", new StageSpec(4, PageSize.Size4K), new StageSpec(4, PageSize.Size2M),
            [new VmSpec("vm0", 4UL << 30)],
            [new DeviceProvision(Sim.Dev3, "iommufd", [new DmaRegion(0x1_0000_0000, 64UL << 20)])]);
        var sys = SystemProvisioner.Provision(hw, req);
        var pd = sys.Devices[Sim.Dev3];
        var areas = ((IommuSim.Uapi.Iommufd.Ioas)pd.Context!.Lookup(pd.IoasId)!).Iopt.Areas;
        Assert.Equal(2, areas.Count);
        Assert.Equal(0xFEE00000ul - 1, areas[0].Last);
        Assert.Equal(0xFEF00000ul, areas[1].Iova);
        var region = pd.Regions[0];
        var r = hw.ExecuteDma(Sim.Dev3, null, region.Iova + (63UL << 20), 64, Access.Write);
        Assert.False(r.Faulted, r.Reason.ToString());
        Assert.Equal(region.HostPhysical + (63UL << 20), r.PhysicalAddress);
    }
}
