using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Vm;
using static IommuSim.Uapi.Designs.ProvisionCalls;

namespace IommuSim.Uapi.Designs;

/// <summary>
/// What <c>nested</c> and <c>shadow</c> share: each device is assigned to a VM through the VFIO cdev,
/// the guest driver builds its own stage-1 table in VM memory and maps its buffers there; the VMM
/// turns that into hardware tables (<see cref="AttachGuestDevice"/>), and every map, unmap or page
/// fault the guest's IOMMU driver handles goes through a trap to the VMM.
/// </summary>
public abstract class VmDesign : TranslationDesign
{
    /// <summary>Guest buffers are placed from 1 MiB up; guest page tables come from the top of RAM down.</summary>
    public const ulong GuestBufferBase = 0x10_0000;

    /// <summary>The top of guest RAM kept for the guest's page tables.</summary>
    public const ulong GuestTableArea = 64UL << 20;

    /// <summary>
    /// Where the guest driver places a buffer of <paramref name="bytes"/> after <paramref name="cursor"/>:
    /// aligned to the stage-1 leaf, and past the MSI window when it would overlap it (a write there is an interrupt,
    /// and the VMM leaves the window out of stage 2) — also when aligning up lands on the window's start.
    /// </summary>
    public static ulong GuestBufferGpa(ulong cursor, ulong bytes, PageSize stage1Leaf)
    {
        ulong align = Math.Max(4096UL, stage1Leaf.Bytes());
        ulong gpa = (cursor + align - 1) & ~(align - 1);
        if (gpa <= IommufdContext.MsiWindowLast && gpa + bytes > IommufdContext.MsiWindowStart)
            gpa = (IommufdContext.MsiWindowLast + 1 + align - 1) & ~(align - 1);
        return gpa;
    }

    public override bool Translates => true;
    public override bool AssignsDevicesToVm => true;
    public override bool OverheadsTrapToVmm => true;

    /// <summary>One VM's provisioning state: its IOAS and NEST_PARENT HWPT (nested), and where the next guest buffer goes.</summary>
    protected internal sealed class VmState(VirtualMachine vm)
    {
        public VirtualMachine Vm { get; } = vm;
        public uint Ioas { get; set; }
        public uint NestParent { get; set; }
        /// <summary>SMMUv3 nested: the VM's vIOMMU (ARM_SMMUV3) over its NEST_PARENT HWPT, and the guest's next ASID.</summary>
        public uint Viommu { get; set; }
        /// <summary>SMMUv3 nested with translation.viommu.hwQueue: the VM's VCMDQ (IOMMU_HW_QUEUE_ALLOC), 0 for none.</summary>
        public uint HwQueue { get; set; }
        public ushort NextAsid { get; set; } = 1;
        public ulong NextGuestBuffer { get; set; } = GuestBufferBase;
    }

    /// <summary>Levels of the guest's stage-1 table.</summary>
    protected abstract int GuestStage1Levels(StageSpec stage1);

    /// <summary>Stage checks the design needs before any call is made.</summary>
    protected virtual void CheckStages(ProvisionedSystem sys, ProvisionRequest req) { }

    /// <summary>What the VMM does when it creates a VM (before any device is assigned).</summary>
    protected virtual void OnVmCreated(IommufdContext ictx, VmState vs, ProvisionRequest req, DeviceProvision d) { }

    /// <summary>
    /// The VMM's calls that make the guest's stage-1 mappings (<paramref name="guestMaps"/>: IOVA → GPA) reach the hardware.
    /// <paramref name="guestStage1"/> is the guest's x86-format table, null when the design builds the guest's tables itself
    /// (<see cref="GuestBuildsX86Table"/> false: an Arm guest's CD + VMSAv8-64 tables).
    /// </summary>
    protected abstract void AttachGuestDevice(ProvisionedSystem sys, IommufdContext ictx, VmState vs, ProvisionedDevice pd, DeviceProvision d,
        ProvisionRequest req, PageTable? guestStage1, IReadOnlyList<(ulong Iova, ulong Gpa, ulong Bytes)> guestMaps);

    /// <summary>Whether the guest driver's stage-1 table is an x86 (VT-d first-stage format) table built here.</summary>
    protected virtual bool GuestBuildsX86Table(ProvisionedSystem sys) => true;

    public override void Provision(ProvisionedSystem sys, ProvisionRequest req)
    {
        CheckStages(sys, req);
        var ictx = OpenIommufd(sys);
        var vms = new Dictionary<string, VmState>();
        foreach (var d in req.Devices)
        {
            if (d.AttachVia != "iommufd")
                throw new ArgumentException($"{d.Rid}: a VM's device is assigned through the VFIO cdev (attach.via = iommufd), not '{d.AttachVia}'");
            var pd = NewDevice(sys, d);
            string vmName = d.Vm ?? (req.Vms.Count > 0 ? req.Vms[0].Name : throw new ArgumentException($"{d.Rid}: design {req.Design} needs a VM"));
            var vmSpec = req.Vms.FirstOrDefault(v => v.Name == vmName) ?? throw new ArgumentException($"{d.Rid}: unknown VM '{vmName}'");
            if (!vms.TryGetValue(vmName, out var vs))
            {
                vs = new VmState(sys.Process.CreateVm(vmSpec.MemoryBytes, MemoryAlignment(req.Stage2)));
                vms[vmName] = vs;
                sys.Vms[vmName] = vs.Vm;
                OnVmCreated(ictx, vs, req, d);
            }
            pd.Vm = vs.Vm;

            // The guest driver builds its stage-1 table and maps its buffers (GVA/IOVA → GPA).
            PageTable? s1 = null;
            if (GuestBuildsX86Table(sys))
            {
                pd.GuestPgtbl = vs.Vm.AllocPageTable(GuestStage1Levels(req.Stage1));
                s1 = vs.Vm.PageTable(pd.GuestPgtbl)!;
            }
            var guestMaps = new List<(ulong Iova, ulong Gpa, ulong Bytes)>();
            foreach (var r in d.Regions)
            {
                ulong gpa = GuestBufferGpa(vs.NextGuestBuffer, r.Bytes, req.Stage1.PageSize);
                if (gpa + r.Bytes > vs.Vm.MemoryBytes - GuestTableArea)
                    throw new ArgumentException($"{d.Rid}: VM '{vmName}' has too little memory for its DMA regions");
                vs.NextGuestBuffer = gpa + r.Bytes;
                s1?.Map(r.Iova, gpa, r.Bytes, Access.ReadWrite, req.Stage1.PageSize);
                guestMaps.Add((r.Iova, gpa, r.Bytes));
                pd.Regions.Add(new ProvisionedRegion(r.Iova, r.Bytes, vs.Vm.GpaToHpa(gpa)));
            }
            AttachGuestDevice(sys, ictx, vs, pd, d, req, s1, guestMaps);
        }
    }

    /// <summary>GPA of the guest driver's run-time buffer pool: guest RAM just below its page-table area.</summary>
    protected static ulong GuestBufferPoolGpa(ProvisionedDevice pd) => pd.Vm!.MemoryBytes - GuestTableArea - BufferPoolBytes;

    protected override void ValidateVmAssignment(string path, DeviceAttachment device, IReadOnlyCollection<string> vmNames, List<string> errors)
    {
        if (string.IsNullOrEmpty(device.Vm) && vmNames.Count != 1)
            errors.Add($"{path}:attach:vm: design '{Name}' assigns devices to a VM; name one (vms: {(vmNames.Count == 0 ? "none defined" : string.Join(", ", vmNames))})");
    }

    protected override void ValidateAttachVia(string path, DeviceAttachment device, List<string> errors)
    {
        if (device.Via == "kernel")
            errors.Add($"{path}:attach:via = kernel: design '{Name}' assigns the device to a VM through VFIO; use iommufd or vfio-container");
    }

    public override void ValidateSystem(int vmCount, List<string> errors)
    {
        if (vmCount == 0) errors.Add($"translation:design = {Name}: needs a VM in 'vms'");
    }
}
