using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Designs;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.Designs;

/// <summary>What each design object answers besides provisioning: its mapping target, trap costs, fault delivery, checks.</summary>
public class DesignObjectTests
{
    private static readonly RunTimeCosts Costs = new(VmExitPs: 1_000_000, IoctlPs: 300_000, Hint: Driver.InvalidationHint.Never);

    [Fact]
    public void Registry_MapsEveryConfigName_ToItsDesign_AndRefusesOthers()
    {
        Assert.Equal(["off", "passthrough", "single-stage", "nested", "shadow"], TranslationDesigns.Names);
        foreach (var d in TranslationDesigns.All) Assert.Same(d, TranslationDesigns.Get(d.Name));
        Assert.Null(TranslationDesigns.Find("warp-drive"));
        var e = Assert.Throws<ArgumentException>(() => TranslationDesigns.Get("warp-drive"));
        Assert.Equal("unknown design 'warp-drive' (off, passthrough, single-stage, nested, shadow)", e.Message);
    }

    /// <summary>(design, via, map overhead, unmap overhead, invalidate overhead, fault delivery) in units of <see cref="Costs"/>.</summary>
    public static TheoryData<string, string, long, long, long, long> Targets() => new()
    {
        { "passthrough", "kernel", 0, 0, 0, 0 },
        // The host kernel maps in its own domain; a VFIO program pays an ioctl per map and unmap.
        { "single-stage", "kernel", 0, 0, 0, 0 },
        { "single-stage", "iommufd", Costs.IoctlPs, Costs.IoctlPs, 0, 0 },
        { "single-stage", "vfio-container", Costs.IoctlPs, Costs.IoctlPs, 0, 0 },
        // Nested: only the guest's invalidations trap (HWPT_INVALIDATE); its page faults cross the VMM both ways.
        { "nested", "iommufd", 0, 0, Costs.TrapPs, 2 * Costs.TrapPs },
        // Shadow (caching mode): maps trap too, and a fault's new mapping traps once more.
        { "shadow", "iommufd", Costs.TrapPs, 0, Costs.TrapPs, 3 * Costs.TrapPs },
    };

    [Theory]
    [MemberData(nameof(Targets))]
    public void MappingTarget_MapsWhereTheDeviceTranslates_WithTheDesignsTrapCosts(string name, string via, long map, long unmap, long invalidate, long delivery)
    {
        var design = TranslationDesigns.Get(name);
        var hw = PlatformPort.CreatePlatform(new PlatformSpec());
        var req = new ProvisionRequest(name, new StageSpec(), new StageSpec(), [new VmSpec("vm0", 256UL << 20)],
            [new DeviceProvision(Sim.Dev3, via, [new DmaRegion(0x1_0000_0000, 0x10000)], "vm0")]);
        var sys = SystemProvisioner.Provision(hw, req);
        var pd = sys.Devices[Sim.Dev3];
        DmaEngine dev = hw.Device(Sim.Dev3)!;
        var target = design.MappingTarget(hw, dev, pd, Costs);

        Assert.Equal((map, unmap, invalidate), (target.MapOverheadPs, target.UnmapOverheadPs, target.InvalidateOverheadPs));
        Assert.Equal(delivery, design.FaultDeliveryPs(Costs));

        // A run-time mapping through the target is what the device's DMA then reaches.
        ulong buffer = target.BufferBase + 0x3000, iova = target.IovaBase + 0x5000;
        if (target.IdentityMapped) iova = buffer;
        target.Map(iova, buffer, 0x1000, Access.ReadWrite, target.CreateGather());
        var r = hw.ExecuteDma(Sim.Dev3, pd.Pasid, iova + 0x40, 64, Access.Write);
        Assert.False(r.Faulted, $"{name}/{via}: {r.Reason}");
        // Nested: the guest's buffer pool is guest RAM (the table's output is a GPA).
        ulong hostBuffer = name == "nested" ? pd.Vm!.GpaToHpa(buffer) : buffer;
        Assert.Equal(hostBuffer + 0x40, r.PhysicalAddress);
        Assert.True(target.IovaBase >= TranslationDesign.DynamicIovaBase || target.IdentityMapped);
    }

    [Fact]
    public void Off_TakesTheIommuOffThePath_AndEveryOtherDesignKeepsIt()
    {
        foreach (var d in TranslationDesigns.All) Assert.Equal(d.Name != "off", d.IommuOnPath);
    }

    [Theory]
    [InlineData("off", "kernel", null, true, 0, "devices:0:attach:demandPaging = true: demand paging needs IOMMU translation (design single-stage, nested or shadow; design = off)")]
    [InlineData("single-stage", "kernel", null, true, 0, "")]
    [InlineData("nested", "kernel", "a", false, 1, "devices:0:attach:via = kernel: design 'nested' assigns the device to a VM through VFIO; use iommufd or vfio-container")]
    [InlineData("shadow", "iommufd", null, false, 0, "devices:0:attach:vm: design 'shadow' assigns devices to a VM; name one (vms: none defined)|translation:design = shadow: needs a VM in 'vms'")]
    [InlineData("shadow", "iommufd", null, false, 1, "")]
    public void Checks_NameTheKeyAndWhatTheDesignNeeds(string name, string via, string? vm, bool demandPaging, int vms, string expected)
    {
        var design = TranslationDesigns.Get(name);
        var errors = new List<string>();
        var vmNames = Enumerable.Range(0, vms).Select(i => ((char)('a' + i)).ToString()).ToList();
        design.ValidateDevice("devices:0", new DeviceAttachment(via, vm, demandPaging), vmNames, errors);
        design.ValidateSystem(vms, errors);
        Assert.Equal(expected, string.Join("|", errors));
    }

    [Theory]
    [InlineData(0x10_0000ul, 0x1000ul, PageSize.Size4K, 0x10_0000ul)]
    [InlineData(0x10_0001ul, 0x1000ul, PageSize.Size4K, 0x10_1000ul)]
    [InlineData(0x10_0000ul, 0x1000ul, PageSize.Size2M, 0x20_0000ul)]
    [InlineData(0xFEDF_F000ul, 0x1000ul, PageSize.Size4K, 0xFEDF_F000ul)] // ends just below the MSI window
    [InlineData(0xFEDF_F000ul, 0x2000ul, PageSize.Size4K, 0xFEF0_0000ul)] // would straddle it
    [InlineData(0xFEC0_1000ul, 0x1000ul, PageSize.Size2M, 0xFF00_0000ul)] // aligned up to the window's start: not in it either
    [InlineData(0xFEE0_0800ul, 0x1000ul, PageSize.Size4K, 0xFEF0_0000ul)] // a cursor inside the window
    public void GuestBuffers_AreAligned_AndNeverInTheMsiWindow(ulong cursor, ulong bytes, PageSize size, ulong expected)
    {
        Assert.Equal(expected, VmDesign.GuestBufferGpa(cursor, bytes, size));
    }

    [Fact]
    public void Nested_ARegionAlignedUpToTheMsiWindow_IsPlacedPastIt_AndReachable()
    {
        // Region 0 ends at GPA 0xFEC01000; with 2 MiB stage-1 leaves the next 2 MiB boundary is the MSI
        // window's start, which the VMM leaves out of stage 2 (so a buffer there would fault).
        var hw = PlatformPort.CreatePlatform(new PlatformSpec());
        ulong first = 0xFEC0_1000ul - 0x20_0000ul;
        var req = new ProvisionRequest("nested", new StageSpec(4, PageSize.Size2M), new StageSpec(4, PageSize.Size2M), [new VmSpec("vm0", 8UL << 30)],
            [new DeviceProvision(Sim.Dev3, "iommufd", [new DmaRegion(0x1_0000_0000, first), new DmaRegion(0x3_0000_0000, 0x20_0000)])]);
        var sys = SystemProvisioner.Provision(hw, req);
        var region = sys.Devices[Sim.Dev3].Regions[1];
        var r = hw.ExecuteDma(Sim.Dev3, null, region.Iova + 0x100, 64, Access.Write);
        Assert.False(r.Faulted, r.Reason.ToString());
        Assert.Equal(region.HostPhysical + 0x100, r.PhysicalAddress);
    }
}
