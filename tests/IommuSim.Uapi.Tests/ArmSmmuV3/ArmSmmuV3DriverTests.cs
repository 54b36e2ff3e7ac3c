using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.ArmSmmuV3;

/// <summary>
/// The arm-smmu-v3 driver model behind the iommufd objects, on a platform with iommu.architecture =
/// smmuv3: the kernel picks the driver, domains are real VMSAv8-64 tables the SMMU walks, STE/CD writes
/// are followed by CFGI_*, unmaps by TLBI + CMD_SYNC. Each test names the kernel function it follows.
/// </summary>
public sealed class ArmSmmuV3DriverTests
{
    private static Sim NewSim(bool ats = false)
    {
        var spec = new PlatformSpec { Devices = [DeviceSpec.Parse("0000:03:00.0", 3, ats), DeviceSpec.Parse("0000:04:00.0", 4)] };
        return new Sim(spec, new IommuOptions { Architecture = "smmuv3" });
    }

    private static ArmSmmuV3Driver Driver(Sim s) => Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);

    [Fact]
    public void Probe_installs_a_two_level_stream_table_with_abort_stes()
    {
        // arm_smmu_init_strtab_2lvl (STRTAB_SPLIT = 8) and arm_smmu_init_initial_stes with disable_bypass: DMA is refused until attach.
        var s = NewSim();
        var drv = Driver(s);
        Assert.Same(drv.StreamTable, s.Platform.Smmu!.StreamTable);
        Assert.True(drv.StreamTable.TwoLevel);
        Assert.Equal(ArmSmmuV3Driver.StrtabSplit, drv.StreamTable.Split);
        Assert.Equal(SteConfig.Abort, drv.StreamTable.Read(Sim.Dev3.Value).Config);
        var r = s.Dma(Sim.Dev3, 0x1000);
        Assert.True(r.Faulted);
        Assert.Equal(FaultReason.ContextNotPresent, r.Reason);
        Assert.True(s.Platform.Smmu.CommandQueue.Syncs >= 1); // arm_smmu_device_reset: CFGI_ALL, TLBI_NSNH_ALL, CMD_SYNC
    }

    [Theory]
    [InlineData(false, ArmSmmuStage.S1, SteConfig.Stage1)] // flags 0: "prefer S1" — a CD with an ASID
    [InlineData(true, ArmSmmuStage.S2, SteConfig.Stage2)]  // NEST_PARENT: stage 2 with a VMID
    public void Dma_through_an_iommufd_domain_reaches_the_mapped_page_and_faults_after_unmap(bool nestParent, ArmSmmuStage stage, SteConfig config)
    {
        // arm_smmu_domain_alloc_paging_flags → attach (arm_smmu_attach_dev) → IOAS_MAP (map_pages) → DMA →
        // IOAS_UNMAP (unmap_pages + arm_smmu_iotlb_sync → arm_smmu_tlb_inv_range_domain + CMD_SYNC) → DMA faults.
        var s = NewSim();
        uint ioas = s.IoasAlloc();
        var idev = s.Bind(Sim.Dev3);
        var alloc = new IommuHwptAlloc { dev_id = idev.Id, pt_id = ioas, flags = nestParent ? IommuHwptAllocFlags.NEST_PARENT : 0 };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(alloc));
        Assert.Equal(Errno.OK, s.Attach(idev, alloc.out_hwpt_id, out _));
        var domain = Assert.IsType<ArmSmmuDomain>(((HwptPaging)s.Ctx.Lookup(alloc.out_hwpt_id)!).PagingDomain);
        Assert.Equal(stage, domain.Stage);
        Assert.Equal(config, Driver(s).StreamTable.Read(Sim.Dev3.Value).Config);

        ulong va = s.Mmap(2 << 20);
        Assert.Equal(Errno.OK, s.Map(ioas, va, 2 << 20, 0x4000_0000));
        ulong pa = s.Process.Mm.Translate(va + 0x3040)!.Value;
        var first = s.Dma(Sim.Dev3, 0x4000_3040);
        Assert.False(first.Faulted);
        Assert.Equal(pa, first.PhysicalAddress);
        Assert.False(s.Dma(Sim.Dev3, 0x4000_3040).Faulted); // now a TLB hit

        var smmu = s.Platform.Smmu!;
        long syncs = smmu.CommandQueue.Syncs, before = s.Port.NowPs;
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x4000_0000, 2 << 20));
        Assert.True(smmu.CommandQueue.Syncs > syncs);
        Assert.True(s.Port.NowPs > before); // the CMD_SYNC wait took simulated time
        var after = s.Dma(Sim.Dev3, 0x4000_3040);
        Assert.True(after.Faulted);
        Assert.Equal(stage == ArmSmmuStage.S1 ? FaultReason.FirstStageNotPresent : FaultReason.SecondStageNotPresent, after.Reason);
    }

    [Theory]
    // nest parent, ATS → the commands an unmap sends (arm_smmu_tlb_inv_range_domain, arm_smmu_atc_inv_domain)
    [InlineData(false, false, new[] { SmmuOpcode.TlbiNhVa, SmmuOpcode.CmdSync })]
    [InlineData(true, false, new[] { SmmuOpcode.TlbiS2Ipa, SmmuOpcode.TlbiNhAll, SmmuOpcode.CmdSync })]
    [InlineData(false, true, new[] { SmmuOpcode.TlbiNhVa, SmmuOpcode.AtcInv, SmmuOpcode.CmdSync })]
    [InlineData(true, true, new[] { SmmuOpcode.TlbiS2Ipa, SmmuOpcode.TlbiNhAll, SmmuOpcode.AtcInv, SmmuOpcode.CmdSync })]
    public void Unmap_sends_the_kernels_invalidation_commands(bool nestParent, bool ats, SmmuOpcode[] expected)
    {
        var s = NewSim(ats);
        var drv = Driver(s);
        var d = drv.AllocPagingDomain(nestParent, false);
        Assert.Equal(Errno.OK, drv.SetDevicePasid(s.Device(Sim.Dev3), 0, d, null));
        d.Map(0x10_0000, 0x2_0000_0000, 0x4000, Access.ReadWrite, allowLargePages: false);
        var q = s.Platform.Smmu!.CommandQueue;
        uint prod = q.Prod;
        Assert.Equal(0x4000UL, d.Unmap(0x10_0000, 0x4000));
        var sent = new List<SmmuOpcode>();
        for (uint i = prod; i != q.Prod; i = (i + 1) & ((q.Entries << 1) - 1))
        {
            ulong slot = q.Base + 16UL * (i & (q.Entries - 1));
            sent.Add(SmmuCommand.Decode(s.Platform.Memory.ReadU64(slot), s.Platform.Memory.ReadU64(slot + 8)).Opcode);
        }
        Assert.Equal(expected, sent);
        Assert.Equal(q.Prod, q.Cons); // all consumed: the driver waited for the CMD_SYNC
    }

    [Theory]
    [InlineData(true, false, 0x1234_5000UL)]  // arm_smmu_identity_domain: bypass STE, IOVA = PA
    [InlineData(false, true, 0UL)]            // arm_smmu_blocked_domain: abort STE
    public void Identity_bypasses_and_blocked_aborts(bool identity, bool faulted, ulong pa)
    {
        var s = NewSim();
        var drv = Driver(s);
        var d = drv.AllocPagingDomain(false, false);
        Assert.Equal(Errno.OK, drv.SetDevicePasid(s.Device(Sim.Dev3), 0, d, null));
        IommuDomain? to = identity ? drv.Identity : drv.Blocked;
        Assert.Equal(Errno.OK, drv.SetDevicePasid(s.Device(Sim.Dev3), 0, to, d));
        Assert.Empty(d.Attachments);
        var r = s.Dma(Sim.Dev3, 0x1234_5000);
        Assert.Equal(faulted, r.Faulted);
        if (!faulted) Assert.Equal(pa, r.PhysicalAddress);
    }

    [Fact]
    public void A_pasid_attaches_through_the_cd_table()
    {
        // arm_smmu_set_pasid: the domain's CD at SSID = PASID, the STE a CD-table STE whose S1DSS aborts
        // transactions without a PASID (the RID is blocked); a stage-2 domain cannot take a PASID.
        var s = NewSim();
        var drv = Driver(s);
        var dev = s.Device(Sim.Dev3);
        var d = drv.AllocPagingDomain(false, false);
        d.Map(0x8000, 0x3_0000_0000, 0x1000, Access.ReadWrite, false);
        Assert.Equal(Errno.OK, drv.SetDevicePasid(dev, 5, d, null));
        var ste = drv.StreamTable.Read(dev.Rid.Value);
        Assert.Equal(SteConfig.Stage1, ste.Config);
        Assert.Equal(0, ste.S1Dss);
        Assert.Equal(d.Asid, drv.Master(dev.Rid)!.CdTable!.Read(5).Asid);
        var ok = s.Dma(Sim.Dev3, 0x8010, pasid: 5);
        Assert.False(ok.Faulted);
        Assert.Equal(0x3_0000_0010UL, ok.PhysicalAddress);
        Assert.True(s.Dma(Sim.Dev3, 0x8010).Faulted); // no PASID: S1DSS = abort
        Assert.Equal(Errno.EINVAL, drv.SetDevicePasid(dev, 6, drv.AllocPagingDomain(true, false), null));
        Assert.Equal(Errno.EBUSY, drv.SetDevicePasid(dev, 0, drv.AllocPagingDomain(true, false), null));
        Assert.Equal(Errno.OK, drv.SetDevicePasid(dev, 5, null, d)); // arm_smmu_remove_dev_pasid: CD cleared, CFGI_CD
        Assert.True(s.Dma(Sim.Dev3, 0x8010, pasid: 5).Faulted);
        Assert.Equal(SteConfig.Abort, drv.StreamTable.Read(dev.Rid.Value).Config);
    }

    [Fact]
    public void Freed_domains_return_their_asid_and_vmid()
    {
        // arm_smmu_domain_free_paging: TLBI by tag + CMD_SYNC, then the ASID (arm_smmu_asid_xa) / VMID (ida) is free again.
        var s = NewSim();
        var drv = Driver(s);
        var a = drv.AllocPagingDomain(false, false);
        var b = drv.AllocPagingDomain(false, false);
        var v = drv.AllocPagingDomain(true, false);
        Assert.NotEqual(a.Asid, b.Asid);
        Assert.NotEqual((ushort)0, v.Vmid);
        drv.FreeDomain(a);
        Assert.True(a.Freed);
        Assert.Equal(a.Asid, drv.AllocPagingDomain(false, false).Asid);
    }

    [Fact]
    public void Nested_vtd_data_is_refused_on_the_smmu()
    {
        // iommufd_hwpt_nested_alloc: arm-smmu-v3 has no domain_alloc_nested outside a vIOMMU → EOPNOTSUPP.
        var s = NewSim();
        uint ioas = s.IoasAlloc();
        var idev = s.Bind(Sim.Dev3);
        var parent = new IommuHwptAlloc { dev_id = idev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(parent));
        var nested = new IommuHwptAlloc { dev_id = idev.Id, pt_id = parent.out_hwpt_id, data_type = IommuHwptDataType.VTD_S1, data = new IommuHwptVtdS1 { addr_width = 48 } };
        Assert.Equal(Errno.EOPNOTSUPP, s.Ctx.HwptAlloc(nested));
    }

    [Theory]
    [InlineData(IommuSim.Hardware.Iommu.Invalidation.PageResponseCode.Success, 2)] // CMDQ_PRI_1_RESP_SUCC
    [InlineData(IommuSim.Hardware.Iommu.Invalidation.PageResponseCode.Failure, 1)] // CMDQ_PRI_1_RESP_FAIL
    [InlineData(IommuSim.Hardware.Iommu.Invalidation.PageResponseCode.Invalid, 0)] // CMDQ_PRI_1_RESP_DENY
    public void Page_responses_are_posted_as_pri_resp(IommuSim.Hardware.Iommu.Invalidation.PageResponseCode code, byte resp)
    {
        // arm_smmu_page_response / arm_smmu_handle_ppr: CMD_PRI_RESP with the StreamID, SSID, PRGI and response, no CMD_SYNC.
        var s = NewSim();
        var q = s.Platform.Smmu!.CommandQueue;
        uint prod = q.Prod;
        long syncs = q.Syncs;
        Driver(s).PageResponse(s.Device(Sim.Dev3), 3, 17, code);
        ulong slot = q.Base + 16UL * (prod & (q.Entries - 1));
        var c = SmmuCommand.Decode(s.Platform.Memory.ReadU64(slot), s.Platform.Memory.ReadU64(slot + 8));
        Assert.Equal(SmmuOpcode.PriResp, c.Opcode);
        Assert.Equal((uint)Sim.Dev3.Value, c.Sid);
        Assert.Equal(3u, c.Ssid);
        Assert.Equal((ushort)17, c.Tag);
        Assert.Equal(resp, c.Action);
        s.Platform.RunUntil(() => q.Cons == q.Prod);
        Assert.Equal(q.Prod, q.Cons);
        Assert.Equal(syncs, q.Syncs);
    }

    [Fact]
    public void An_unmap_reaches_the_ats_device_atc()
    {
        // arm_smmu_atc_inv_domain → CMD_ATC_INV → the device's ATS invalidation; the CMD_SYNC waits for its round trip.
        var s = NewSim(ats: true);
        var drv = Driver(s);
        var d = drv.AllocPagingDomain(false, false);
        Assert.Equal(Errno.OK, drv.SetDevicePasid(s.Device(Sim.Dev3), 0, d, null));
        d.Map(0x10_0000, 0x2_0000_0000, 0x1000, Access.ReadWrite, false);
        var dev = s.Platform.Devices[0];
        long before = dev.Ats.DeviceTlbInvalidations, t0 = s.Port.NowPs;
        d.Unmap(0x10_0000, 0x1000);
        Assert.Equal(before + 1, dev.Ats.DeviceTlbInvalidations);
        Assert.True(s.Port.NowPs - t0 >= IommuSim.Engine.Time.SimTime.FromNs(s.Platform.Smmu!.Options.Queues.AtcInvalidateRoundTripNs));
    }
}
