using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vm;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>The vIOMMU path on the SMMUv3 platform with the arm-smmu-v3 driver model: arm_vsmmu_init on a real stage-2
/// domain, arm_smmu_attach_dev_nested (+ arm_smmu_attach_prepare_vmaster), the nested STE, and the event thread
/// (arm_smmu_handle_evt → arm_vmaster_report_event).</summary>
public class SmmuPlatformViommuTests
{
    private sealed class Setup
    {
        public Setup()
        {
            S = new Sim(iommu: new IommuOptions { Architecture = "smmuv3" });
            Driver = Assert.IsType<ArmSmmuV3Driver>(S.Kernel.Driver);
            Vm = S.Process.CreateVm(0x100_0000);
            Ioas = S.IoasAlloc();
            Assert.Equal(Errno.OK, S.Map(Ioas, Vm.RamUserVa, Vm.MemoryBytes, 0));
            Dev = S.Bind(Sim.Dev3);
            var parent = new IommuHwptAlloc { dev_id = Dev.Id, pt_id = Ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
            Assert.Equal(Errno.OK, S.Ctx.HwptAlloc(parent));
            Parent = parent.out_hwpt_id;
            var v = new IommuViommuAlloc { type = (uint)IommuViommuType.ARM_SMMUV3, dev_id = Dev.Id, hwpt_id = Parent };
            Assert.Equal(Errno.OK, S.Ctx.ViommuAlloc(v));
            Viommu = v.out_viommu_id;
            Guest = new ArmVsmmuGuest(Vm, asid: 1);
            Guest.Stage1.Map(0x10_0000, 0x20_0000, 0x4000, Access.ReadWrite, 12);
        }

        public Sim S { get; }
        public ArmSmmuV3Driver Driver { get; }
        public VirtualMachine Vm { get; }
        public uint Ioas { get; }
        public IommufdDevice Dev { get; }
        public uint Parent { get; }
        public uint Viommu { get; }
        public ArmVsmmuGuest Guest { get; }

        public uint Nested(ulong ste0)
        {
            var c = new IommuHwptAlloc { dev_id = Dev.Id, pt_id = Viommu, data_type = IommuHwptDataType.ARM_SMMUV3, data_arm_smmuv3 = new() { ste = [ste0, 0] } };
            Assert.Equal(Errno.OK, S.Ctx.HwptAlloc(c));
            return c.out_hwpt_id;
        }
    }

    /// <summary>arm_vsmmu_init takes the VMID of the NEST_PARENT stage-2 domain; a plain HWPT_ALLOC of ARM data on the
    /// nest parent itself is EOPNOTSUPP (arm-smmu-v3 nests only through a vIOMMU).</summary>
    [Fact]
    public void Viommu_wraps_the_stage2_domain()
    {
        var g = new Setup();
        var vsmmu = Assert.IsType<ArmVsmmu>(((Iommufd.Viommu)g.S.Ctx.Lookup(g.Viommu)!).DriverData);
        var s2 = Assert.IsType<ArmSmmuDomain>(((HwptPaging)g.S.Ctx.Lookup(g.Parent)!).PagingDomain);
        Assert.Equal(s2.Vmid, vsmmu.Vmid);
        var direct = new IommuHwptAlloc { dev_id = g.Dev.Id, pt_id = g.Parent, data_type = IommuHwptDataType.ARM_SMMUV3, data_arm_smmuv3 = new() { ste = [g.Guest.Ste0, 0] } };
        Assert.Equal(Errno.EOPNOTSUPP, g.S.Ctx.HwptAlloc(direct));
    }

    /// <summary>arm_smmu_attach_prepare_vmaster: a translating nested domain needs the master's vDEVICE (ENOENT before);
    /// then the STE is nested: the guest's CD table over the parent's stage 2 and VMID.</summary>
    [Fact]
    public void Nested_attach_needs_a_vdevice_and_writes_a_nested_ste()
    {
        var g = new Setup();
        uint hwpt = g.Nested(g.Guest.Ste0);
        Assert.Equal(Errno.ENOENT, g.S.Attach(g.Dev, hwpt, out _));
        Assert.Equal(Errno.OK, g.S.Ctx.VdeviceAlloc(new IommuVdeviceAlloc { viommu_id = g.Viommu, dev_id = g.Dev.Id, virt_id = 0x18 }));
        Assert.Equal(Errno.OK, g.S.Attach(g.Dev, hwpt, out _));
        var ste = g.Driver.StreamTable.Read(Sim.Dev3.Value);
        var s2 = (ArmSmmuDomain)((HwptPaging)g.S.Ctx.Lookup(g.Parent)!).PagingDomain;
        Assert.Equal((SteConfig.Nested, g.Guest.CdTable.Base, s2.Vmid, s2.Table.Root), (ste.Config, ste.S1ContextPtr, ste.S2Vmid, ste.S2Ttb));
        // An abort vSTE (guest STE not valid) needs no vDEVICE and aborts.
        uint abort = g.Nested(0);
        Assert.Equal(Errno.OK, g.S.Ctx.DeviceReplace(g.Dev, 0, ref abort));
        Assert.Equal(SteConfig.Abort, g.Driver.StreamTable.Read(Sim.Dev3.Value).Config);
    }

    /// <summary>A guest-owned stage-1 fault reaches the vEVENTQ with the vSID; a stage-2 fault (the VMM's) stays with the host.</summary>
    [Fact]
    public void Guest_faults_go_to_the_veventq_and_stage2_faults_stay_with_the_host()
    {
        var g = new Setup();
        Assert.Equal(Errno.OK, g.S.Ctx.VdeviceAlloc(new IommuVdeviceAlloc { viommu_id = g.Viommu, dev_id = g.Dev.Id, virt_id = 0x18 }));
        var q = new IommuVeventqAlloc { viommu_id = g.Viommu, type = IommuVeventqType.ARM_SMMUV3, veventq_depth = 4 };
        Assert.Equal(Errno.OK, g.S.Ctx.VeventqAlloc(q));
        Assert.Equal(Errno.OK, g.S.Attach(g.Dev, g.Nested(g.Guest.Ste0), out _));
        Assert.False(g.S.Port.ExecuteDma(Sim.Dev3, null, 0x10_0040, 64, Access.Write).Faulted);
        Assert.True(g.S.Port.ExecuteDma(Sim.Dev3, null, 0x50_0000, 64, Access.Write).Faulted);         // not in the guest's table
        g.Guest.Stage1.Map(0x60_0000, 0x0FF0_0000, 0x1000, Access.ReadWrite, 12);                  // beyond the 16 MiB stage 2
        Assert.True(g.S.Port.ExecuteDma(Sim.Dev3, null, 0x60_0000, 64, Access.Write).Faulted);
        var events = new List<Vevent>();
        Assert.Equal(Errno.OK, g.S.Ctx.VeventqRead(q.out_veventq_id, 4096, events, out _));
        var e = Assert.Single(events);
        Assert.Equal(0x18UL, BitConverter.ToUInt64(e.Data, 0) >> 32);
        Assert.Equal(1, g.Driver.HostEvents);
    }
}
