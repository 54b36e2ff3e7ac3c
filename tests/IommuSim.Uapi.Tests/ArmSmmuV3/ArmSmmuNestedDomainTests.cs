using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.ArmSmmuV3;

/// <summary>
/// Nested domains of the arm-smmu-v3 driver model: a guest STE validated as arm_smmu_validate_vste does,
/// installed as a nested STE (arm_smmu_make_nested_domain_ste) over a NEST_PARENT stage-2 domain, so a DMA
/// takes the 2-D walk through the guest's CD and stage-1 tables at IPAs.
/// </summary>
public sealed class ArmSmmuNestedDomainTests
{
    /// <summary>Guest memory: an IPA window the parent's stage 2 maps onto contiguous host memory.</summary>
    private sealed class GuestMemory(PhysicalMemory host, ulong ipaBase, ulong paBase, ulong bytes) : ISmmuTableMemory
    {
        private ulong _next = ipaBase + bytes / 2; // tables in the upper half, data pages in the lower
        public ulong ReadU64(ulong ipa) => host.ReadU64(paBase + (ipa - ipaBase));
        public void WriteU64(ulong ipa, ulong value) => host.WriteU64(paBase + (ipa - ipaBase), value);
        public ulong AllocateTable(ulong size)
        {
            size = Math.Max(size, 64);
            ulong a = (_next + size - 1) & ~(size - 1);
            _next = a + size;
            for (ulong o = 0; o < size; o += 8) WriteU64(a + o, 0);
            return a;
        }
        public void FreeTable(ulong address, ulong size) { }
    }

    private static (ulong D0, ulong D1) Encode(in StreamTableEntry ste)
    {
        Span<ulong> d = stackalloc ulong[8];
        ste.Encode(d);
        return (d[0], d[1]);
    }

    [Theory]
    [InlineData(false, SteConfig.Stage2, 0, Errno.OK)]     // V = 0: treated as abort
    [InlineData(true, SteConfig.Abort, 0, Errno.OK)]
    [InlineData(true, SteConfig.Bypass, 0, Errno.OK)]
    [InlineData(true, SteConfig.Stage1, 1, Errno.OK)]
    [InlineData(true, SteConfig.Stage2, 0, Errno.EIO)]     // a guest cannot give itself stage 2
    [InlineData(true, SteConfig.Nested, 0, Errno.EIO)]
    [InlineData(true, SteConfig.Stage1, 2, Errno.EIO)]     // EATS must be abort or translate
    public void Guest_stes_are_validated_as_arm_smmu_validate_vste(bool valid, SteConfig config, byte eats, Errno expected)
    {
        var (d0, d1) = Encode(new StreamTableEntry { Valid = valid, Config = config, Eats = eats });
        Assert.Equal(expected, ArmSmmuNestedDomain.Validate([d0, d1], out var kept));
        if (expected == Errno.OK) Assert.Equal(valid ? config : SteConfig.Abort, kept.Config);
    }

    [Fact]
    public void A_nested_domain_translates_through_the_guest_tables_and_a_parent_unmap_faults_it()
    {
        var s = new Sim(new PlatformSpec { Devices = [DeviceSpec.Parse("0000:03:00.0", 3)] }, new IommuOptions { Architecture = "smmuv3" });
        var drv = Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);
        var parent = drv.AllocPagingDomain(nestParent: true, dirtyTracking: false);
        const ulong ipaBase = 0x8000_0000, window = 16UL << 20;
        ulong paBase = s.Platform.Frames.AllocateContiguous(window, 2UL << 20);
        parent.Map(ipaBase, paBase, window, Access.ReadWrite, allowLargePages: false);

        var guest = new GuestMemory(s.Platform.Memory, ipaBase, paBase, window);
        var s1 = new VmsaPageTable(guest, SmmuStage.Stage1, Granule.Size4K, 48);
        s1.Map(0x1000_0000, ipaBase + 0x10_0000, 0x1000, Access.ReadWrite);
        var cds = new ContextDescriptorTable(guest, 0);
        cds.Install(0, new ContextDescriptor { Valid = true, T0Sz = 16, Tg0 = Granule.Size4K, Ips = 5, Aa64 = true, Record = true, Abort = true, Asid = 7, Ttb0 = s1.Root });
        var (d0, d1) = Encode(new StreamTableEntry { Valid = true, Config = SteConfig.Stage1, S1ContextPtr = cds.Base, S1CdMax = 0 });

        Assert.Equal(Errno.EINVAL, drv.AllocNestedDomain(drv.AllocPagingDomain(false, false), [d0, d1], out _)); // parent must be a nest parent
        Assert.Equal(Errno.OK, drv.AllocNestedDomain(parent, [d0, d1], out var nested));
        Assert.Equal(Errno.OK, drv.SetDevicePasid(s.Device(Sim.Dev3), 0, nested, null));
        var ste = drv.StreamTable.Read(Sim.Dev3.Value);
        Assert.Equal(SteConfig.Nested, ste.Config);
        Assert.Equal(parent.Vmid, ste.S2Vmid);
        Assert.Equal(cds.Base, ste.S1ContextPtr);

        var r = s.Dma(Sim.Dev3, 0x1000_0040);
        Assert.False(r.Faulted);
        Assert.Equal(paBase + 0x10_0040, r.PhysicalAddress);
        Assert.True(r.WalkReads > 4, $"a 2-D walk reads more than a 1-D one ({r.WalkReads})");

        // The host unmaps the IPA page: TLBI_S2_IPA + TLBI_NH_ALL(VMID) + CMD_SYNC, then the guest IOVA faults in stage 2.
        parent.Unmap(ipaBase + 0x10_0000, 0x1000);
        var after = s.Dma(Sim.Dev3, 0x1000_0040);
        Assert.True(after.Faulted);
        Assert.Equal(FaultReason.SecondStageNotPresent, after.Reason);
        Assert.Equal(Errno.OK, drv.SetDevicePasid(s.Device(Sim.Dev3), 0, null, nested));
        drv.FreeDomain(nested!);
        Assert.Empty(parent.Children);
    }
}
