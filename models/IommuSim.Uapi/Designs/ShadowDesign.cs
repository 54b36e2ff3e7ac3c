using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Iommufd;
using static IommuSim.Uapi.Designs.ProvisionCalls;

namespace IommuSim.Uapi.Designs;

/// <summary>
/// <c>shadow</c>: the guest builds its stage-1 table; the VMM (a shadowing vIOMMU in caching mode)
/// mirrors each guest mapping with an IOAS_MAP of the guest RAM behind the GPA at the guest IOVA,
/// so the hardware sees one single-stage table (PGTT = second-stage).
/// </summary>
public sealed class ShadowDesign : VmDesign
{
    public override string Name => "shadow";

    /// <summary>The shadow table must hold every guest IOVA: the narrower of the guest's stage 1 and the host's stage 2.</summary>
    public override int RunTimeAddressBits(int stage1Levels, int stage2Levels) => 12 + 9 * Math.Min(stage1Levels, stage2Levels);

    /// <summary>The guest's table is never walked by the hardware; it is a 4- or 5-level x86 table in any case.</summary>
    protected override int GuestStage1Levels(StageSpec stage1) => Math.Max(4, stage1.Levels);

    protected override void AttachGuestDevice(ProvisionedSystem sys, IommufdContext ictx, VmState vs, ProvisionedDevice pd, DeviceProvision d,
        ProvisionRequest req, PageTable? guestStage1, IReadOnlyList<(ulong Iova, ulong Gpa, ulong Bytes)> guestMaps)
    {
        // Shadowing: the VMM traps the guest's map and mirrors it, IOVA → the guest RAM behind the GPA.
        uint shadow = NewIoas(ictx, req.Stage2, d);
        foreach (var (iova, gpa, bytes) in guestMaps) MapFixed(ictx, shadow, vs.Vm.RamUserVa + gpa, iova, bytes, d);
        AttachCdev(sys, ictx, pd, d, shadow, usePasidHwpt: d.Pasid is not null);
        pd.IoasId = shadow;
    }

    /// <summary>
    /// A shadowing vIOMMU runs in caching mode: the guest must invalidate after every map (trap: VM
    /// exit, then the VMM's IOAS_MAP ioctl) and its unmap invalidations trap too (one per unmap when
    /// strict, one per flush when the guest is lazy). Buffers are guest RAM, seen host-physically.
    /// </summary>
    public override IMappingTarget MappingTarget(Platform platform, DmaEngine device, ProvisionedDevice pd, RunTimeCosts costs)
        // VT-d or SMMUv3 alike: the VMM's IOAS_MAP / IOAS_UNMAP reach the shadow IOAS's paging domain, whose driver
        // builds the flush (invalidation descriptors or TLBIs) into the neutral gather.
        => MappingTargets.ForShadow(pd.Context!, pd.IoasId, pd.HwptId, pd.Vm!, pd.Vm!.PageTable(pd.GuestPgtbl)!, GuestBufferPoolGpa(pd), BufferPoolBytes,
            DynamicIovaBase, DynamicIovaBytes, mapOverheadPs: costs.TrapPs, invalidateOverheadPs: costs.TrapPs);

    /// <summary>As nested (a trip each way), plus one: the guest's new mapping traps so the VMM can copy it into the shadow table.</summary>
    public override long FaultDeliveryPs(RunTimeCosts costs) => 3 * costs.TrapPs;
}
