using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.ArmSmmuV3;

/// <summary>
/// The I/O page-fault path on both architectures through the driver-owned <see cref="DmaApi.IIopfPort"/>: user space
/// answers through an iommufd FAULT object (iommufd_fault_iopf_handler → iommufd_fault_fops_write →
/// iommu_page_response), on VT-d through the page request queue and a page group response, on SMMUv3 through the
/// PRI queue (arm_smmu_priq_thread) and CMD_PRI_RESP, or for a stall-enabled master the event queue's stall record
/// (arm_smmu_evtq_thread → arm_smmu_handle_evt) and CMD_RESUME (arm_smmu_page_response).
/// </summary>
public sealed class SmmuIopfTests
{
    private const ulong Iova = 0x4000_0000;

    private static Sim NewSim(string arch, bool ats = true, bool pri = true, int priQueueLog2 = 7, bool listen = true, string driverPri = "iopf")
    {
        var iommu = new IommuOptions { Architecture = arch };
        iommu.Smmu.Queues.PriQueueLog2 = priQueueLog2;
        iommu.Smmu.DriverPri = driverPri; // the SVA/PRI series; mainline (deny) has its own test
        var s = new Sim(new PlatformSpec { Devices = [new DeviceSpec(Sim.Dev3, 3, Ats: ats, PageRequests: pri)] }, iommu);
        if (listen) s.Kernel.ListenForPageRequests(); // the iopf path routes faults as they arrive, as `iommusim uapi` does
        return s;
    }

    /// <summary>FAULT_QUEUE_ALLOC, an HWPT with IOMMU_HWPT_FAULT_ID_VALID over an empty IOAS, attached (iommufd_hwpt_alloc → iommufd_fault_domain_attach_dev).</summary>
    private static (uint Fault, uint Ioas) AttachWithFaultQueue(Sim s)
    {
        var fa = new IommuFaultAlloc();
        Assert.Equal(Errno.OK, s.Ctx.FaultQueueAlloc(fa));
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        var alloc = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.FAULT_ID_VALID, fault_id = fa.out_fault_id };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(alloc));
        Assert.Equal(Errno.OK, s.Attach(dev, alloc.out_hwpt_id, out _));
        return (fa.out_fault_id, ioas);
    }

    [Theory]
    [InlineData("vtd")]    // intel_prq_report → iommu_report_device_fault; intel_iommu_page_response: page group response
    [InlineData("smmuv3")] // arm_smmu_handle_ppr → iommu_report_device_fault; arm_smmu_page_response: CMD_PRI_RESP
    public void A_pri_fault_goes_to_the_user_fault_queue_and_the_retried_dma_reaches_the_page_user_space_mapped(string arch)
    {
        var s = NewSim(arch);
        var (fault, ioas) = AttachWithFaultQueue(s);

        // The ATS translation request fails, the device sends a page request and waits for its response.
        Assert.Throws<InvalidOperationException>(() => s.Dma(Sim.Dev3, Iova, Access.Write));
        Assert.Equal(1, s.Kernel.PageRequestsToUser);
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 16, out var faults));
        var f = Assert.Single(faults);
        Assert.Equal(Iova, f.addr);
        Assert.Equal(IommuHwptPgfault.PERM_WRITE, f.perm);
        Assert.Equal(IommuHwptPgfault.FLAGS_LAST_PAGE, f.flags & IommuHwptPgfault.FLAGS_LAST_PAGE);

        ulong buf = s.Mmap(0x1000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 0x1000, Iova));
        var device = s.Platform.Devices[0];
        Assert.Equal(1, device.Outstanding);
        Assert.Equal(Errno.OK, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = f.cookie, code = IommuHwptPageResponse.CODE_SUCCESS }));
        s.Port.Advance(100_000_000); // 100 µs: the response reaches the device, which retries and completes the DMA
        Assert.Equal(0, device.Outstanding);
        Assert.Equal(1, device.Ats.PageResponses);
        Assert.Equal(1, s.Kernel.PageRequestsToUser); // the retry translated: no second page request

        var r = s.Dma(Sim.Dev3, Iova + 0x40, Access.Write);
        Assert.False(r.Faulted);
        Assert.Equal(s.Process.Mm.Translate(buf + 0x40), r.PhysicalAddress);
        if (arch == "smmuv3")
        {
            var smmu = s.Platform.Smmu!;
            Assert.Equal(1, smmu.PriQueue.Written);
            Assert.Equal(0, smmu.EventQueue.Written); // an ATS translation request's fault records no event (§3.9.1)
        }
    }

    [Theory]
    [InlineData("vtd")]
    [InlineData("smmuv3")]
    public void An_invalid_response_fails_the_dma(string arch)
    {
        // IOMMU_PAGE_RESP_INVALID: VT-d "Invalid Request", SMMUv3 CMD_PRI_RESP Deny: the device gives the request up.
        var s = NewSim(arch);
        var (fault, _) = AttachWithFaultQueue(s);
        Assert.Throws<InvalidOperationException>(() => s.Dma(Sim.Dev3, Iova, Access.Read));
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 16, out var faults));
        Assert.Equal(Errno.OK, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = faults[0].cookie, code = IommuHwptPageResponse.CODE_INVALID }));
        s.Port.Advance(100_000_000);
        Assert.Equal(0, s.Platform.Devices[0].Outstanding); // completed as failed, not retried
        Assert.Equal(1, s.Platform.Devices[0].Ats.PageResponses);
        Assert.Equal(1, s.Kernel.PageRequestsToUser);
        // Nothing was mapped: the next DMA to the page faults again and asks again.
        Assert.Throws<InvalidOperationException>(() => s.Dma(Sim.Dev3, Iova, Access.Read));
        Assert.Equal(2, s.Kernel.PageRequestsToUser);
    }

    [Fact]
    public void A_stall_enabled_master_stalls_and_is_resumed_with_cmd_resume()
    {
        // arm_smmu_probe_device: "dma-can-stall" → stall_enabled; arm_smmu_make_s1_cd sets CD.S, the STE leaves
        // S1STALLD clear; arm_smmu_handle_evt reports the stall (grpid = STAG); arm_smmu_page_response → CMD_RESUME.
        var s = NewSim("smmuv3", ats: false, pri: false);
        var drv = Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);
        drv.Master(Sim.Dev3)!.StallEnabled = true;
        var (fault, ioas) = AttachWithFaultQueue(s);
        var ste = drv.StreamTable.Read(Sim.Dev3.Value);
        Assert.False(ste.S1StallDisable);
        Assert.True(drv.Master(Sim.Dev3)!.CdTable!.Read(0).Stall);

        Assert.Throws<InvalidOperationException>(() => s.Dma(Sim.Dev3, Iova, Access.Read)); // held in its slot
        var smmu = s.Platform.Smmu!;
        Assert.Equal(1, smmu.Stalls);
        Assert.Equal(1, smmu.InFlight);
        Assert.Equal(1, drv.StallFaultsReported);
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 16, out var faults));
        var f = Assert.Single(faults);
        Assert.Equal(Iova, f.addr);
        Assert.Equal(IommuHwptPgfault.PERM_READ, f.perm);

        ulong buf = s.Mmap(0x1000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 0x1000, Iova));
        long executed = smmu.CommandQueue.Executed;
        Assert.Equal(Errno.OK, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = f.cookie, code = IommuHwptPageResponse.CODE_SUCCESS }));
        s.Port.Advance(100_000_000);
        Assert.Equal(executed + 1, smmu.CommandQueue.Executed); // the CMD_RESUME, no CMD_SYNC
        Assert.Equal(0, smmu.InFlight);
        Assert.Equal(0, s.Platform.Devices[0].Outstanding);
        Assert.Equal(1, smmu.Stalls); // the retry translated
        Assert.Equal(0, smmu.PriQueue.Written);
        var r = s.Dma(Sim.Dev3, Iova + 0x80);
        Assert.False(r.Faulted);
        Assert.Equal(s.Process.Mm.Translate(buf + 0x80), r.PhysicalAddress);
    }

    [Fact]
    public void A_stall_answered_invalid_is_aborted()
    {
        // CMDQ_RESUME_0_RESP_ABORT for IOMMU_PAGE_RESP_INVALID: the stalled transaction terminates with its fault.
        var s = NewSim("smmuv3", ats: false, pri: false);
        Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver).Master(Sim.Dev3)!.StallEnabled = true;
        var (fault, _) = AttachWithFaultQueue(s);
        Assert.Throws<InvalidOperationException>(() => s.Dma(Sim.Dev3, Iova, Access.Read));
        Assert.Equal(Errno.OK, s.Ctx.FaultRead(fault, 16, out var faults));
        Assert.Equal(Errno.OK, s.Ctx.FaultRespond(fault, new IommuHwptPageResponse { cookie = faults[0].cookie, code = IommuHwptPageResponse.CODE_INVALID }));
        s.Port.Advance(100_000_000);
        Assert.Equal(0, s.Platform.Smmu!.InFlight);
        Assert.Equal(0, s.Platform.Devices[0].Outstanding);
        Assert.Equal(1, s.Platform.Smmu.Stalls);
    }

    [Fact]
    public void A_master_that_may_not_stall_gets_s1stalld_and_its_faults_terminate()
    {
        // arm_smmu_make_cdtable_ste: S1STALLD when the SMMU has stalls and !master->stall_enabled; the fault is recorded, not held.
        var s = NewSim("smmuv3", ats: false, pri: false);
        var drv = Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);
        AttachWithFaultQueue(s);
        Assert.True(drv.StreamTable.Read(Sim.Dev3.Value).S1StallDisable);
        Assert.True(s.Dma(Sim.Dev3, Iova).Faulted);
        Assert.Equal(0, s.Platform.Smmu!.Stalls);
        Assert.Equal(0, drv.StallFaultsReported);
        Assert.Equal(0, s.Kernel.PageRequestsToUser);
    }

    private sealed class RecordingEndpoint : ISmmuAtsEndpoint
    {
        public List<(ushort Prgi, byte Response)> Responses { get; } = [];
        public int InvalidateAtc(bool substreamValid, uint ssid, ulong address, uint log2Pages) => 0;
        public void OnPriResponse(bool substreamValid, uint ssid, ushort prgi, byte response) => Responses.Add((prgi, response));
    }

    [Fact]
    public void A_full_pri_queue_loses_the_request_answers_its_group_success_and_the_driver_acknowledges_the_overflow()
    {
        // SMMUv3 §8 (PRI queue overflow): a request that finds the PRIQ full is discarded, PROD.OVFLG toggles, and a
        // discarded request with Last = 1 gets an automatic PRG response, Success, so the device retries. The driver
        // (arm_smmu_priq_thread: queue_sync_prod → -EOVERFLOW, "PRIQ overflow detected -- requests lost", then
        // queue_sync_cons_ovf) drains what was recorded and acknowledges the overflow.
        var s = NewSim("smmuv3", priQueueLog2: 1, listen: false);
        var drv = Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);
        var smmu = s.Platform.Smmu!;
        var ep = new RecordingEndpoint();
        smmu.RegisterEndpoint(Sim.Dev3.Value, ep);
        for (ushort g = 0; g < 3; g++)
            smmu.RecordPageRequest(new PriRequest(Sim.Dev3.Value, 0, false, g, Last: true, Read: true, Write: false, Iova + g * 0x1000UL));
        Assert.Equal(2, smmu.PriQueue.Written);
        Assert.Equal(1, smmu.PriQueue.Lost);
        Assert.NotEqual(smmu.PriQueue.OverflowFlag, smmu.PriQueue.OverflowAcknowledged);
        Assert.Equal([((ushort)2, (byte)2)], ep.Responses); // only the lost group, answered Success by the SMMU itself
        Assert.Equal(1, smmu.PriAutoResponses);

        // A request that is not the last of its group gets no automatic response (the group's last one answers it).
        smmu.RecordPageRequest(new PriRequest(Sim.Dev3.Value, 0, false, 7, Last: false, Read: true, Write: false, Iova));
        Assert.Single(ep.Responses);

        var read = new List<PageRequest>();
        while (s.Kernel.Iopf.TryReadFault(out var pr)) read.Add(pr);
        Assert.Equal([0, 1], read.Select(p => p.PageGroupIndex));
        Assert.Equal(1, drv.PriqOverflows);
        Assert.Equal(smmu.PriQueue.OverflowFlag, smmu.PriQueue.OverflowAcknowledged);
    }

    [Fact]
    public void A_response_posted_to_a_full_command_queue_waits_for_space_in_simulated_time()
    {
        // arm_smmu_cmdq_issue_cmd → arm_smmu_cmdq_issue_cmdlist polls until the queue is not full; from inside a
        // hardware event the model cannot spin, so the response waits in order and goes in as CONS frees a slot.
        var s = NewSim("smmuv3");
        var drv = Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);
        var ep = new RecordingEndpoint();
        var smmu = s.Platform.Smmu!;
        smmu.RegisterEndpoint(Sim.Dev3.Value, ep);
        var fill = Enumerable.Repeat(new SmmuCommand { Opcode = SmmuOpcode.TlbiNsnhAll }, (int)smmu.CommandQueue.FreeSlots).ToArray();
        Assert.True(smmu.CommandQueue.Submit(fill));
        drv.PageResponse(new PageRequest(0, Sim.Dev3.Value, 0, false, Iova, Access.Read, 9, true), PageResponseCode.Success);
        drv.PageResponse(new PageRequest(0, Sim.Dev3.Value, 0, false, Iova, Access.Read, 10, true), PageResponseCode.Success);
        Assert.Equal(2, drv.PendingResponses);
        Assert.Empty(ep.Responses);
        s.Port.Advance(1_000_000_000);
        Assert.Equal(0, drv.PendingResponses);
        Assert.Equal([((ushort)9, (byte)2), ((ushort)10, (byte)2)], ep.Responses); // in order, after the TLBIs
    }

    [Fact]
    public void The_pri_response_carries_the_prg_index_and_the_pasid()
    {
        // arm_smmu_page_response (PRI): CMDQ_OP_PRI_RESP with sid, ssid (SSV when the request had a PASID), grpid, resp.
        var s = NewSim("smmuv3");
        var drv = Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);
        var ep = new RecordingEndpoint();
        s.Platform.Smmu!.RegisterEndpoint(Sim.Dev3.Value, ep);
        drv.PageResponse(new PageRequest(0, Sim.Dev3.Value, 5, true, Iova, Access.Read, 0x1A3, true), PageResponseCode.Success);
        drv.PageResponse(new PageRequest(0, Sim.Dev3.Value, 0, false, Iova, Access.Read, 4, true), PageResponseCode.Invalid);
        s.Port.Advance(10_000_000);
        Assert.Equal([((ushort)0x1A3, (byte)2), ((ushort)4, (byte)0)], ep.Responses);
    }

    /// <summary>
    /// Mainline arm_smmu_handle_ppr (iommu.smmu.driverPri = deny): "unexpected PRI request received", and the group's
    /// last request is answered CMD_PRI_RESP with PRI_RESP_DENY; nothing reaches iopf or the fault queue, and the
    /// device gives the DMA up.
    /// </summary>
    [Fact]
    public void Mainline_denies_every_pri_request_itself()
    {
        var s = NewSim("smmuv3", driverPri: "deny");
        var drv = Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);
        var ep = new RecordingEndpoint();
        var smmu = s.Platform.Smmu!;
        smmu.RegisterEndpoint(Sim.Dev3.Value, ep);
        smmu.RecordPageRequest(new PriRequest(Sim.Dev3.Value, 0, false, 3, Last: false, Read: true, Write: false, Iova));
        smmu.RecordPageRequest(new PriRequest(Sim.Dev3.Value, 0, false, 3, Last: true, Read: true, Write: false, Iova + 0x1000));
        Assert.False(s.Kernel.Iopf.TryReadFault(out _));
        Assert.Equal(2, drv.PriRequestsDenied);
        s.Port.Advance(10_000_000);
        Assert.Equal([((ushort)3, (byte)0)], ep.Responses); // one response for the group: DENY
        Assert.Equal(0, s.Kernel.PageRequestsToUser);
    }
}
