using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Iommufd;
using static IommuSim.Uapi.Designs.ProvisionCalls;

namespace IommuSim.Uapi.Designs;

/// <summary>
/// <c>nested</c> on an Arm SMMUv3, as a VMM with an accelerated vSMMU provisions it (QEMU's arm-smmuv3-accel;
/// drivers/iommu/iommufd/viommu.c, arm-smmu-v3-iommufd.c): guest RAM GPA = IOVA in a NEST_PARENT HWPT (stage 2),
/// one IOMMU_VIOMMU_ALLOC(ARM_SMMUV3) per VM over it, per device an IOMMU_VDEVICE_ALLOC giving its virtual StreamID,
/// the guest's CD table + VMSAv8-64 stage-1 table in VM RAM (<see cref="ArmVsmmuGuest"/>), and a nested HWPT
/// allocated on the vIOMMU from the guest's STE (IOMMU_HWPT_DATA_ARM_SMMUV3) that the device is attached to.
/// </summary>
internal static class SmmuNestedProvisioning
{
    /// <summary>The guest's stage-1 input range (<see cref="ArmVsmmuGuest.InputBits"/>): 4 levels of a 4 KiB granule.</summary>
    public const int GuestStage1Levels = 4;

    /// <summary>The guest's VCMDQ: 128 commands of 16 bytes, one 2 KiB piece of a page (assumption: a Linux guest's
    /// arm_smmu_cmdq size is larger, but 128 entries hold every batch the DMA API issues).</summary>
    public const ulong GuestQueueBytes = 0x800;

    public static void CheckStages(ProvisionRequest req)
    {
        if (req.Stage1.Levels != GuestStage1Levels)
            throw new ArgumentException($"translation:stage1:levels = {req.Stage1.Levels}: the SMMUv3 guest's stage-1 table has a 48-bit input, 4 levels of a 4 KiB granule");
    }

    /// <summary>The VMM's calls for one device; the guest's tables are built and mapped (IOVA → GPA) first, as the guest driver does before its STE is handed over.</summary>
    public static void Attach(ProvisionedSystem sys, IommufdContext ictx, VmDesign.VmState vs, ProvisionedDevice pd, DeviceProvision d,
        ProvisionRequest req, IReadOnlyList<(ulong Iova, ulong Gpa, ulong Bytes)> guestMaps)
    {
        if (d.Pasid is not null)
            throw new ArgumentException($"{d.Rid}: a PASID attach of a nested SMMUv3 device is not modelled (the guest STE's SubstreamID 0 only)");
        var (file, devId) = OpenAndBind(sys, ictx, pd, d);
        if (vs.NestParent == 0)
        {
            var parent = new IommuHwptAlloc { dev_id = devId, pt_id = vs.Ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
            Check(ictx.HwptAlloc(parent), "IOMMU_HWPT_ALLOC(NEST_PARENT)", d);
            vs.NestParent = parent.out_hwpt_id;
            // A guest-owned queue needs the Tegra241 CMDQV flavour of the vIOMMU (tegra241_cmdqv_init_vintf_user: one VINTF).
            var viommu = req.ViommuHwQueue
                ? new IommuViommuAlloc { dev_id = devId, hwpt_id = vs.NestParent, type = (uint)IommuViommuType.TEGRA241_CMDQV,
                    data_len = IommuViommuTegra241Cmdqv.Size, data = new IommuViommuTegra241Cmdqv() }
                : new IommuViommuAlloc { dev_id = devId, hwpt_id = vs.NestParent, type = (uint)IommuViommuType.ARM_SMMUV3 };
            Check(ictx.ViommuAlloc(viommu), req.ViommuHwQueue ? "IOMMU_VIOMMU_ALLOC(TEGRA241_CMDQV)" : "IOMMU_VIOMMU_ALLOC(ARM_SMMUV3)", d);
            vs.Viommu = viommu.out_viommu_id;
        }
        // The guest sees the device at the StreamID its firmware tables give it: the RID, as QEMU's IORT does for a PCI device.
        Check(ictx.VdeviceAlloc(new IommuVdeviceAlloc { viommu_id = vs.Viommu, dev_id = devId, virt_id = pd.Spec.Rid.Value }), "IOMMU_VDEVICE_ALLOC", d);

        // The guest arm-smmu-v3 driver: a CD (its own ASID) and a stage-1 table in its RAM, buffers mapped at their leaf size.
        var guest = new ArmVsmmuGuest(vs.Vm, vs.NextAsid++);
        int leafShift = req.Stage1.PageSize.Bytes() switch { >= 1UL << 30 => 30, >= 2UL << 20 => 21, _ => 12 };
        foreach (var (iova, gpa, bytes) in guestMaps) guest.Stage1.Map(iova, gpa, bytes, Access.ReadWrite, leafShift);

        var alloc = new IommuHwptAlloc
        {
            dev_id = devId, pt_id = vs.Viommu, data_type = IommuHwptDataType.ARM_SMMUV3,
            data_arm_smmuv3 = new IommuHwptArmSmmuv3 { ste = [guest.Ste0, 0] },
        };
        Check(ictx.HwptAlloc(alloc), "IOMMU_HWPT_ALLOC(ARM_SMMUV3)", d);
        pd.HwptId = AttachPt(file, alloc.out_hwpt_id, d);
        pd.Context = ictx;
        pd.IoasId = vs.Ioas;
        if (req.ViommuHwQueue && vs.HwQueue == 0)
        {
            // The guest driver's VCMDQ: one page of its RAM (an IPA mapped by stage 2), LVCMDQ 0 of its VINTF; the VMM
            // hands it to the SMMU with IOMMU_HW_QUEUE_ALLOC, which pins it (iommufd_hw_queue_alloc_phys).
            ulong queueGpa = vs.Vm.TableMemory.AllocateTablePage();
            var q = new IommuHwQueueAlloc { viommu_id = vs.Viommu, type = IommuHwQueueType.TEGRA241_CMDQV, index = 0,
                nesting_parent_iova = queueGpa, length = GuestQueueBytes };
            Check(ictx.HwQueueAlloc(q), "IOMMU_HW_QUEUE_ALLOC(TEGRA241_CMDQV)", d);
            vs.HwQueue = q.out_hw_queue_id;
        }
        pd.SmmuGuest = new SmmuNestedGuest(guest, vs.Viommu, vs.HwQueue);
        pd.DomainId = guest.Asid;
    }
}

/// <summary>A nested SMMUv3 guest's side of one device: its CD + stage-1 tables, its vIOMMU, and its VCMDQ (0: none, trapped).</summary>
public sealed record SmmuNestedGuest(ArmVsmmuGuest Guest, uint ViommuId, uint HwQueueId);
