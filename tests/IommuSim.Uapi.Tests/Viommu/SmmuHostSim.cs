using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>
/// The arm-smmu-v3 side the vIOMMU code calls, over a real SMMUv3 hardware model: commands the vIOMMU issues run
/// through the SMMU's command queue (CMD_SYNC included) and are kept for the tests to read back. StreamID = the
/// device's requester id; a nest-parent HWPT's VMID is its domain id.
/// </summary>
internal sealed class SmmuHostSim : IArmSmmuV3Host
{
    public Scheduler Scheduler { get; } = new();
    public PhysicalMemory Memory { get; } = new();
    public SmmuUnit Smmu { get; }
    public List<SmmuCommand[]> Batches { get; } = [];
    public List<bool> BatchSync { get; } = [];

    public SmmuHostSim(bool nesting = true, bool s2fwb = true, bool tegra = false, int cmdqs = 7)
    {
        var frames = new FrameAllocator(Memory, 0x1000_0000, 0xF000_0000);
        var o = new SmmuOptions();
        o.Queues.CommandQueueLog2 = cmdqs;
        Smmu = new SmmuUnit(o, Scheduler, Memory, frames, new MemoryTimingModel(new MemoryOptions(), new SimRandom(1)));
        FeatNesting = nesting;
        FeatS2Fwb = s2fwb;
        if (tegra) Cmdqv = new Tegra241Cmdqv(this, numVintfLog2: 2, numVcmdqLog2: 3, numSidPerVmLog2: 1);
    }

    public object IommuDev => this;
    public bool FeatNesting { get; }
    public bool FeatS2Fwb { get; }
    public bool Coherent { get; set; } = true;
    public bool MasterCanwbs(DeviceSpec dev) => Coherent;

    /// <summary>IDR1.CMDQS from the model's queue size; the other registers as the model's SMMU has them.</summary>
    public uint ReadIdr(int n) => n switch
    {
        0 => 0b11u | (2u << 2) | (1u << 10) | (1u << 18) | (2u << 6), // S1P, S2P, TTF=AArch64, ATS, VMID16, HTTU=access+dirty
        1 => ((uint)Smmu.Options.Queues.CommandQueueLog2 << 21) | (20u << 6) | 16u, // CMDQS, SSIDSIZE 20, SIDSIZE 16
        3 => FeatS2Fwb ? 1u << 8 : 0,
        5 => 5u | (1u << 4) | (1u << 5) | (1u << 6), // OAS 48 bits, 4K/16K/64K granules
        _ => 0,
    };

    public uint ReadIidr() => 0x43B;
    public uint ReadAidr() => 0x02;

    public uint StreamId(DeviceSpec dev) => dev.Rid.Value;

    public bool S2Parent(HwptPaging parent, out ushort vmid)
    {
        vmid = parent.PagingDomain.DomainId;
        return parent.NestParent;
    }

    /// <summary>A nested domain over the (VT-d) parent of this host: it carries the vSTE for the tests to read.</summary>
    public Errno AllocNestedDomain(ArmVsmmu vsmmu, ulong ste0, ulong ste1, bool enableAts, out IommuNestedDomain? domain)
    {
        domain = new HostNestedDomain(vsmmu, ste0, ste1, enableAts);
        return Errno.OK;
    }

    internal sealed class HostNestedDomain(ArmVsmmu vsmmu, ulong ste0, ulong ste1, bool enableAts) : IommuNestedDomain(vsmmu.Vmid)
    {
        public ulong Ste0 { get; } = ste0;
        public ulong Ste1 { get; } = ste1;
        public bool EnableAts { get; } = enableAts;
        public override IommuPagingDomain ParentDomain => vsmmu.Core.Hwpt.PagingDomain;
    }

    public Errno IssueCmdlist(ReadOnlySpan<SmmuCommand> cmds, bool sync)
    {
        var batch = sync ? [.. cmds, new SmmuCommand { Opcode = SmmuOpcode.CmdSync }] : cmds.ToArray();
        if (!Smmu.CommandQueue.Submit(batch)) return Errno.EIO;
        Scheduler.Run();
        Batches.Add(cmds.ToArray());
        BatchSync.Add(sync);
        return Smmu.CommandQueue.Error ? Errno.EIO : Errno.OK;
    }

    public Tegra241Cmdqv? Cmdqv { get; }

    public List<CommandQueue> GuestQueues { get; } = [];

    public CommandQueue CreateGuestQueue(ulong basePa, int log2Size)
    {
        var q = Smmu.CreateCommandQueue(basePa, log2Size);
        GuestQueues.Add(q);
        return q;
    }

    public void WaitForQueue(CommandQueue queue) => Scheduler.Run();

    /// <summary>This host keeps its events (no masters attached to nested domains here).</summary>
    public void HandleEvents()
    {
        while (Smmu.EventQueue.TryRead(out _)) { }
    }

    public IEnumerable<SmmuCommand> Issued => Batches.SelectMany(b => b);
}
