using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;
using static IommuSim.Uapi.Driver.ArmSmmuV3.ArmVsmmuUserData;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// What arm-smmu-v3.c gives arm-smmu-v3-iommufd.c for one SMMU (struct arm_smmu_device and its masters): the
/// features the vIOMMU needs, the ID registers, a master's StreamID, the VMID of a stage-2 domain, and the
/// command queue. The arm-smmu-v3 driver model implements it; the vIOMMU code uses nothing else.
/// </summary>
public interface IArmSmmuV3Host
{
    /// <summary>The SMMU instance (viommu->iommu_dev).</summary>
    object IommuDev { get; }

    /// <summary>ARM_SMMU_FEAT_NESTING (IDR0.S1P and S2P).</summary>
    bool FeatNesting { get; }

    /// <summary>ARM_SMMU_FEAT_S2FWB (IDR3.FWB).</summary>
    bool FeatS2Fwb { get; }

    /// <summary>arm_smmu_master_canwbs: the device is fully coherent (no cache maintenance is ever needed).</summary>
    bool MasterCanwbs(DeviceSpec dev);

    /// <summary>SMMU_IDR0..5, SMMU_IIDR, SMMU_AIDR as readl_relaxed returns them.</summary>
    uint ReadIdr(int n);
    uint ReadIidr();
    uint ReadAidr();

    /// <summary>master->streams[0].id (a PCI device has one StreamID).</summary>
    uint StreamId(DeviceSpec dev);

    /// <summary>to_smmu_domain(parent)->smmu == smmu; its stage-2 VMID (s2_cfg.vmid).</summary>
    bool S2Parent(HwptPaging parent, out ushort vmid);

    /// <summary>
    /// The domain part of arm_vsmmu_alloc_domain_nested (the vSTE already validated, EATS cleared from
    /// <paramref name="ste1"/>): a nested domain over the vIOMMU's stage-2 parent, with ATS when <paramref name="enableAts"/>.
    /// </summary>
    Errno AllocNestedDomain(ArmVsmmu vsmmu, ulong ste0, ulong ste1, bool enableAts, out IommuNestedDomain? domain);

    /// <summary>arm_smmu_cmdq_issue_cmdlist on the main command queue (with a CMD_SYNC when <paramref name="sync"/>).</summary>
    Errno IssueCmdlist(ReadOnlySpan<SmmuCommand> cmds, bool sync);

    /// <summary>An extra queue the SMMU hardware reads from guest memory at <paramref name="basePa"/> (a Tegra241 VCMDQ).</summary>
    CommandQueue CreateGuestQueue(ulong basePa, int log2Size);

    /// <summary>Software waits until the SMMU has consumed everything in <paramref name="queue"/> (polls CONS).</summary>
    void WaitForQueue(CommandQueue queue);

    /// <summary>smmu->impl_ops for the Tegra241 CMDQV implementation, when the SMMU has one.</summary>
    Tegra241Cmdqv? Cmdqv { get; }

    /// <summary>arm_smmu_evtq_thread: drain the event queue, forwarding guest-owned events to their vIOMMU.</summary>
    void HandleEvents();
}

/// <summary>
/// The vIOMMU entries of arm-smmu-v3's iommu_ops: arm_smmu_get_viommu_size, arm_vsmmu_init and arm_smmu_hw_info.
/// </summary>
public sealed class ArmVsmmuDriver(IArmSmmuV3Host host) : IViommuDriver, IHwInfoDriver
{
    public IArmSmmuV3Host Host { get; } = host;

    /// <summary>arm_smmu_get_viommu_size: needs FEAT_NESTING and a coherent master (or S2FWB); ARM_SMMUV3 always,
    /// other types through the implementation (TEGRA241_CMDQV).</summary>
    public bool GetViommuSize(IommufdDevice idev, uint type)
    {
        if (!Host.FeatNesting) return false;
        if (!Host.MasterCanwbs(idev.Spec) && !Host.FeatS2Fwb) return false;
        if (type == (uint)IommuViommuType.ARM_SMMUV3) return true;
        return Host.Cmdqv?.GetViommuSize(type) ?? false;
    }

    public object IommuDev(IommufdDevice idev) => Host.IommuDev;

    public void HandleEvents() => Host.HandleEvents();

    /// <summary>arm_vsmmu_init: the parent must be this SMMU's stage 2 (EINVAL); the vIOMMU takes its VMID.</summary>
    public Errno ViommuInit(Viommu viommu, HwptPaging parent, IommuViommuAlloc cmd)
    {
        if (!Host.S2Parent(parent, out ushort vmid)) return Errno.EINVAL;
        var vsmmu = new ArmVsmmu(Host, viommu, vmid);
        viommu.DriverData = vsmmu;
        if (viommu.ViommuType == IommuViommuType.ARM_SMMUV3)
        {
            viommu.Ops = vsmmu;
            return Errno.OK;
        }
        return Host.Cmdqv!.InitVintfUser(vsmmu, cmd.data_len != 0 ? cmd : null);
    }

    /// <summary>arm_smmu_hw_info: DEFAULT or ARM_SMMUV3 gives struct iommu_hw_info_arm_smmuv3 from the ID registers;
    /// another type goes to the implementation (none here: EOPNOTSUPP).</summary>
    public Errno HwInfo(IommufdDevice idev, ref uint type, out byte[] data)
    {
        data = [];
        if (type != IommuHwInfoType.DEFAULT && type != IommuHwInfoType.ARM_SMMUV3) return Errno.EOPNOTSUPP;
        var info = new IommuHwInfoArmSmmuv3 { iidr = Host.ReadIidr(), aidr = Host.ReadAidr() };
        for (int i = 0; i <= 5; i++) info.idr[i] = Host.ReadIdr(i);
        data = info.ToBytes();
        type = IommuHwInfoType.ARM_SMMUV3;
        return Errno.OK;
    }
}

/// <summary>
/// struct arm_vsmmu with arm_vsmmu_ops: nested domains from a guest STE (arm_vsmmu_alloc_domain_nested) and the
/// guest's invalidation commands (arm_vsmmu_cache_invalidate), with the vSID → pSID table of its vDEVICEs.
/// </summary>
public class ArmVsmmu(IArmSmmuV3Host host, Viommu core, ushort vmid) : IViommuOps
{
    public IArmSmmuV3Host Smmu { get; } = host;
    public Viommu Core { get; } = core;

    /// <summary>vsmmu->vmid: the stage-2 parent's VMID, forced into every TLBI the guest sends.</summary>
    public ushort Vmid { get; } = vmid;

    /// <summary>Commands issued to the host command queue on the guest's behalf (batches end with a CMD_SYNC).</summary>
    public long CommandsIssued { get; private set; }

    public virtual void Destroy(Viommu viommu) { }

    /// <summary>
    /// arm_vsmmu_alloc_domain_nested: flags EOPNOTSUPP; iommu_copy_struct_from_user (data type not ARM_SMMUV3 or no
    /// words: EINVAL); arm_smmu_validate_vste (EIO).
    /// </summary>
    public Errno AllocDomainNested(Viommu viommu, uint flags, IommuHwptAlloc cmd, out object? domain)
    {
        domain = null;
        if (flags != 0) return Errno.EOPNOTSUPP;
        if (cmd.data_type != IommuHwptDataType.ARM_SMMUV3 || cmd.data_arm_smmuv3 is not { } arg) return Errno.EINVAL;
        ulong[] ste = [arg.ste[0], arg.ste[1]];
        Errno rc = ValidateVste(ste, out bool enableAts);
        if (rc != Errno.OK) return rc;
        rc = Smmu.AllocNestedDomain(this, ste[0], ste[1] & ~STRTAB_STE_1_EATS, enableAts, out var nested);
        domain = nested;
        return rc;
    }

    /// <summary>arm_vsmmu_vsid_to_sid: the vDEVICE with this virtual id, its device's StreamID.</summary>
    public (bool Found, uint Sid) VsidToSid(uint vsid)
        => Core.FindDev(vsid) is { } dev ? (true, Smmu.StreamId(dev.Spec)) : (false, 0u);

    /// <summary>
    /// arm_vsmmu_cache_invalidate: iommu_copy_struct_from_full_user_array (data type EINVAL, entry_num 0 EINVAL, an
    /// array shorter than entry_num EFAULT: nothing handled), then each command converted in order and issued in
    /// batches of CMDQ_BATCH_ENTRIES − 1 with a CMD_SYNC. A command that does not convert stops with EIO; entry_num
    /// then counts the commands converted before it, even those of the unfinished batch that were never issued
    /// (as the kernel does).
    /// </summary>
    private (ulong C0, ulong C1)[] _copy = new (ulong, ulong)[16];
    private readonly SmmuCommand[] _batch = new SmmuCommand[CMDQ_BATCH_ENTRIES];
    private Func<uint, (bool Found, uint Sid)>? _vsidToSid; // one delegate, not one per call

    public Errno CacheInvalidate(Viommu viommu, IommuHwptInvalidate cmd, ref uint entryNum)
    {
        uint n = entryNum;
        entryNum = 0;
        if (cmd.data_type != IommuHwptInvalidateDataType.VIOMMU_ARM_SMMUV3) return Errno.EINVAL;
        if (n == 0) return Errno.EINVAL;
        var user = cmd.data_arm_smmuv3;
        if (user is null || user.Length < n) return Errno.EFAULT;
        // copy_struct_from_user per entry: a shorter entry_len leaves the rest of the 16 bytes zero. The kernel's
        // kcalloc'd copy is a buffer kept here and grown to the largest array (the trapped run-time path calls this
        // once per guest unmap).
        if (_copy.Length < n) _copy = new (ulong C0, ulong C1)[Math.Max(n, 2 * _copy.Length)];
        var cmds = _copy;
        for (int i = 0; i < n; i++)
        {
            ulong c0 = user[i].cmd0, c1 = user[i].cmd1;
            if (cmd.entry_len < 16)
            {
                c1 = cmd.entry_len <= 8 ? 0 : c1 & (~0UL >> (int)(8 * (16 - cmd.entry_len)));
                if (cmd.entry_len < 8) c0 &= cmd.entry_len == 0 ? 0 : ~0UL >> (int)(8 * (8 - cmd.entry_len));
            }
            cmds[i] = (c0, c1);
        }
        int cur = 0, last = 0;
        Errno ret = Errno.OK;
        var batch = _batch;
        while (cur != n)
        {
            var (c0, c1) = cmds[cur];
            ret = ConvertUserCmd(ref c0, ref c1, Vmid, _vsidToSid ??= VsidToSid);
            if (ret != Errno.OK) break;
            cmds[cur] = (c0, c1);
            cur++;
            if (cur != n && cur - last != CMDQ_BATCH_ENTRIES - 1) continue;
            for (int i = last; i < cur; i++) batch[i - last] = SmmuCommand.Decode(cmds[i].C0, cmds[i].C1);
            ret = Smmu.IssueCmdlist(batch.AsSpan(0, cur - last), sync: true);
            if (ret != Errno.OK)
            {
                cur--;
                break;
            }
            CommandsIssued += cur - last;
            last = cur;
        }
        entryNum = (uint)cur;
        return ret;
    }

    public virtual Errno VdeviceInit(Vdevice vdev) => Errno.OK;
    public virtual void VdeviceDestroy(Vdevice vdev) { }
    public virtual bool GetHwQueueSize(Viommu viommu, uint type) => false;
    public virtual Errno HwQueueInitPhys(HwQueue hwQueue, uint index, ulong basePa) => Errno.EOPNOTSUPP;
    public virtual void HwQueueDestroy(HwQueue hwQueue) { }

    /// <summary>
    /// arm_vmaster_report_event: a guest-owned event of a master behind this vIOMMU (the host's event handler sends
    /// those not on stage 2 here): the StreamID replaced by the master's vSID, the record queued on the vIOMMU's
    /// ARM_SMMUV3 vEVENTQ (EOPNOTSUPP when user space allocated none).
    /// </summary>
    public Errno ReportEvent(uint vsid, ReadOnlySpan<ulong> evt)
    {
        Span<byte> bytes = stackalloc byte[SmmuEvent.Bytes];
        ulong d0 = (evt[0] & ~CMDQ_CFGI_0_SID) | ((ulong)vsid << 32); // EVTQ_0_SID is bits 63:32 too
        BitConverter.TryWriteBytes(bytes, d0);
        for (int i = 1; i < 4; i++) BitConverter.TryWriteBytes(bytes[(8 * i)..], evt[i]);
        return Core.ReportEvent(IommuVeventqType.ARM_SMMUV3, bytes);
    }
}
