using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Uapi.DmaApi;

namespace IommuSim.Uapi.Designs;

/// <summary>
/// One translation design (config <c>translation.design</c>): everything that differs between
/// off, passthrough, single-stage, nested and shadow lives on its object — how the host kernel,
/// VFIO program or VMM provisions it, whether the IOMMU is on the path, the run-time mapping
/// target the DMA API edits and its trap costs, how an I/O page fault reaches its handler, and the
/// config checks the design imposes. <see cref="TranslationDesigns"/> maps config names to objects;
/// no other code switches on a design name.
/// </summary>
public abstract class TranslationDesign
{
    /// <summary>IOVA window of run-time (per-buffer) mappings, clear of configured DMA regions.</summary>
    public const ulong DynamicIovaBase = 0x7000_0000_0000;
    public const ulong DynamicIovaBytes = 0x0800_0000_0000;
    /// <summary>Memory buffers of run-time mappings are taken from (round-robin).</summary>
    public const ulong BufferPoolBytes = 64UL << 20;

    /// <summary>The config name (<c>translation.design</c>).</summary>
    public abstract string Name { get; }

    /// <summary>Whether DMA goes through the IOMMU at all (false only for <c>off</c>).</summary>
    public virtual bool IommuOnPath => true;

    /// <summary>Whether the IOMMU translates the device's addresses (so a page can be missing and demand-paged).</summary>
    public virtual bool Translates => false;

    /// <summary>Whether devices are assigned to a VM: their DMA regions live in the guest's stage-1 table and VM RAM.</summary>
    public virtual bool AssignsDevicesToVm => false;

    /// <summary>Whether the DMA API's map, unmap and invalidation overheads are traps to the VMM (else ioctls of a VFIO program, or none).</summary>
    public virtual bool OverheadsTrapToVmm => false;

    /// <summary>Width in bits of the table run-time mappings go into (0: no table, DMA addresses are physical).</summary>
    public virtual int RunTimeAddressBits(int stage1Levels, int stage2Levels) => 0;

    /// <summary>Makes the host kernel / VFIO / VMM calls that build this design for every device of <paramref name="request"/>.</summary>
    public abstract void Provision(ProvisionedSystem sys, ProvisionRequest request);

    /// <summary>The run-time mapping target of one provisioned device: what the DMA API maps into, and what each call costs besides.</summary>
    public abstract IMappingTarget MappingTarget(Platform platform, DmaEngine device, ProvisionedDevice pd, RunTimeCosts costs);

    /// <summary>
    /// Fault delivery: time an I/O page request spends reaching its handler and the response coming
    /// back, besides the handling itself (0: the host kernel's own handler).
    /// </summary>
    public virtual long FaultDeliveryPs(RunTimeCosts costs) => 0;

    /// <summary>Hands a demand-paged device's page requests to <paramref name="iopf"/> over this design's delivery path.</summary>
    public void DeliverFaults(IopfHandler iopf, DmaEngine device, IMappingTarget target, IEnumerable<(ulong Iova, ulong Bytes)> windows, RunTimeCosts costs)
        => iopf.Register(device, target, windows, FaultDeliveryPs(costs));

    /// <summary>Checks one device's attachment (<paramref name="path"/> is its config path, e.g. <c>devices:0</c>).</summary>
    public void ValidateDevice(string path, DeviceAttachment device, IReadOnlyCollection<string> vmNames, List<string> errors)
    {
        ValidateVmAssignment(path, device, vmNames, errors);
        if (device.DemandPaging && !Translates)
            errors.Add($"{path}:attach:demandPaging = true: demand paging needs IOMMU translation (design {TranslationDesigns.Translating}; design = {Name})");
        ValidateAttachVia(path, device, errors);
    }

    /// <summary>Checks what the design needs of the whole system, after the per-device checks.</summary>
    public virtual void ValidateSystem(int vmCount, List<string> errors) { }

    protected virtual void ValidateVmAssignment(string path, DeviceAttachment device, IReadOnlyCollection<string> vmNames, List<string> errors) { }

    protected virtual void ValidateAttachVia(string path, DeviceAttachment device, List<string> errors) { }

    public override string ToString() => Name;
}

/// <summary>What a design's config checks see of one device: how it is attached, to which VM, whether it is demand-paged.</summary>
public sealed record DeviceAttachment(string Via, string? Vm, bool DemandPaging);

/// <summary>Run-time software costs a design's mapping target and fault path charge (config translation.dmaApi), in ps.</summary>
public sealed record RunTimeCosts(long VmExitPs, long IoctlPs, Driver.InvalidationHint Hint)
{
    /// <summary>One trip between guest and host: a VM exit and the VMM's ioctl.</summary>
    public long TrapPs => VmExitPs + IoctlPs;
}
