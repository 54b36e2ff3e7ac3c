using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vm;
using static IommuSim.Uapi.Designs.ProvisionCalls;

namespace IommuSim.Uapi.Designs;

/// <summary>
/// <c>nested</c> (PGTT = nested): per VM, the VMM maps guest RAM GPA = IOVA into an IOAS and a
/// NEST_PARENT HWPT (stage 2); per device, the guest's stage-1 table in VM memory is wrapped in a
/// VT-d nested HWPT (IOMMU_HWPT_DATA_VTD_S1) and attached through the VFIO cdev. The guest then maps
/// in its own table; only its invalidations trap (HWPT_INVALIDATE). On an SMMUv3 the VMM goes through a vIOMMU
/// instead (<see cref="SmmuNestedProvisioning"/>), and the guest's invalidations either trap or go to its own VCMDQ.
/// </summary>
public sealed class NestedDesign : VmDesign
{
    public override string Name => "nested";
    public override int RunTimeAddressBits(int stage1Levels, int stage2Levels) => 12 + 9 * stage1Levels;

    protected override int GuestStage1Levels(StageSpec stage1) => stage1.Levels;

    protected override void CheckStages(ProvisionedSystem sys, ProvisionRequest req)
    {
        if (!GuestBuildsX86Table(sys)) { SmmuNestedProvisioning.CheckStages(req); return; }
        if (req.Stage1.Levels is not (4 or 5)) throw new ArgumentException($"stage1 levels {req.Stage1.Levels}: a VT-d stage-1 table has 4 or 5 levels");
    }

    /// <summary>On an SMMUv3 the guest is an Arm guest: it writes a CD table and a VMSAv8-64 stage-1 table, not a VT-d one.</summary>
    protected override bool GuestBuildsX86Table(ProvisionedSystem sys) => sys.Kernel.Driver is not Driver.ArmSmmuV3.ArmSmmuV3Driver;

    protected override void OnVmCreated(IommufdContext ictx, VmState vs, ProvisionRequest req, DeviceProvision d)
        => vs.Ioas = MapGuestRam(ictx, vs.Vm, req.Stage2, d);

    protected override void AttachGuestDevice(ProvisionedSystem sys, IommufdContext ictx, VmState vs, ProvisionedDevice pd, DeviceProvision d,
        ProvisionRequest req, PageTable? guestStage1, IReadOnlyList<(ulong Iova, ulong Gpa, ulong Bytes)> guestMaps)
    {
        if (guestStage1 is null)
        {
            SmmuNestedProvisioning.Attach(sys, ictx, vs, pd, d, req, guestMaps);
            return;
        }
        var (file, devId) = OpenAndBind(sys, ictx, pd, d);
        if (vs.NestParent == 0)
        {
            var parent = new IommuHwptAlloc { dev_id = devId, pt_id = vs.Ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
            Check(ictx.HwptAlloc(parent), "IOMMU_HWPT_ALLOC(NEST_PARENT)", d);
            vs.NestParent = parent.out_hwpt_id;
        }
        var alloc = new IommuHwptAlloc
        {
            dev_id = devId, pt_id = vs.NestParent, data_type = IommuHwptDataType.VTD_S1,
            flags = d.Pasid is null ? 0 : IommuHwptAllocFlags.PASID,
            data = new IommuHwptVtdS1 { pgtbl_addr = pd.GuestPgtbl, addr_width = req.Stage1.Levels == 5 ? 57u : 48u },
        };
        Check(ictx.HwptAlloc(alloc), "IOMMU_HWPT_ALLOC(VTD_S1)", d);
        pd.HwptId = AttachPt(file, alloc.out_hwpt_id, d);
        pd.Context = ictx;
        pd.IoasId = vs.Ioas;
        pd.Table = guestStage1;
        pd.DomainId = ((HwptNested)ictx.Lookup(pd.HwptId)!).NestedDomain!.DomainId;
    }

    /// <summary>The VMM maps guest RAM GPA = IOVA, leaving out the MSI window as a real VMM leaves its hole.</summary>
    private static uint MapGuestRam(IommufdContext ictx, VirtualMachine vm, StageSpec stage2, DeviceProvision d)
    {
        uint ioas = NewIoas(ictx, stage2, d);
        var pieces = new List<(ulong Gpa, ulong Bytes)>();
        if (vm.MemoryBytes <= IommufdContext.MsiWindowStart) pieces.Add((0, vm.MemoryBytes));
        else
        {
            pieces.Add((0, IommufdContext.MsiWindowStart));
            ulong above = IommufdContext.MsiWindowLast + 1;
            if (vm.MemoryBytes > above) pieces.Add((above, vm.MemoryBytes - above));
        }
        foreach (var (gpa, bytes) in pieces) MapFixed(ictx, ioas, vm.RamUserVa + gpa, gpa, bytes, d);
        return ioas;
    }

    /// <summary>
    /// The guest maps in its own stage-1 table (buffers: guest RAM below its page-table area; the
    /// table's output is a GPA); each invalidation traps to the VMM, which issues HWPT_INVALIDATE.
    /// </summary>
    public override IMappingTarget MappingTarget(Platform platform, DmaEngine device, ProvisionedDevice pd, RunTimeCosts costs)
        => pd.SmmuGuest is { } g
            // SMMUv3: the guest's TLBI_NH_VA + CMD_SYNC either trap to the VMM (HWPT_INVALIDATE on the vIOMMU) or go to its
            // own VCMDQ, which the SMMU reads directly: then no VM exit.
            ? new SmmuGuestStage1Target(pd.Context!, g.Guest, g.ViommuId,
                g.HwQueueId == 0 ? null : (Driver.ArmSmmuV3.Tegra241Vcmdq)((HwQueue)pd.Context!.Lookup(g.HwQueueId)!).DriverData!,
                new MappingWindow(GuestBufferPoolGpa(pd), BufferPoolBytes, DynamicIovaBase, DynamicIovaBytes,
                    InvalidateOverheadPs: g.HwQueueId == 0 ? costs.TrapPs : 0))
            : MappingTargets.ForGuestStage1(pd.Context!, pd.HwptId, pd.Table!,
            new MappingWindow(GuestBufferPoolGpa(pd), BufferPoolBytes, DynamicIovaBase, DynamicIovaBytes, InvalidateOverheadPs: costs.TrapPs));

    /// <summary>
    /// The guest handles the fault, reached through the VMM both ways: iommufd queues it on the
    /// HWPT's FAULT object, the VMM injects it into the vIOMMU, and the guest's page response traps
    /// back (a VM exit and an ioctl each way).
    /// </summary>
    public override long FaultDeliveryPs(RunTimeCosts costs) => 2 * costs.TrapPs;
}
