using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// struct tegra241_vintf with tegra241_cmdqv_viommu_ops: a user VINTF is an SMMUv3 vIOMMU (nested domains and
/// trapped invalidation as arm_vsmmu) that also maps vSIDs in hardware (tegra241_vintf_init_vsid) and owns
/// logical VCMDQs (tegra241_vintf_alloc_lvcmdq_user) that the hardware consumes from guest memory.
/// </summary>
public sealed class Tegra241Vintf : ArmVsmmu
{
    private readonly Tegra241Vcmdq?[] _lvcmdqs;
    private readonly (uint Sid, uint Match)?[] _sids;

    internal Tegra241Vintf(Tegra241Cmdqv cmdqv, ArmVsmmu vsmmu, int idx, ulong mmapOffset) : base(vsmmu.Smmu, vsmmu.Core, vsmmu.Vmid)
    {
        Cmdqv = cmdqv;
        Idx = idx;
        MmapOffset = mmapOffset;
        _lvcmdqs = new Tegra241Vcmdq?[cmdqv.NumLvcmdqsPerVintf];
        _sids = new (uint, uint)?[cmdqv.NumSidsPerVintf];
        cmdqv.Register(this);
    }

    public Tegra241Cmdqv Cmdqv { get; }
    public int Idx { get; }
    public ulong MmapOffset { get; }

    /// <summary>The logical VCMDQs by index (null: not allocated).</summary>
    public IReadOnlyList<Tegra241Vcmdq?> Lvcmdqs => _lvcmdqs;

    /// <summary>SID_REPLACE/SID_MATCH pairs: the StreamID for a vSID (the hardware's lookup).</summary>
    public bool TryMatchSid(uint vsid, out uint sid)
    {
        foreach (var s in _sids)
            if (s is { } p && p.Match == ((vsid << 1) | 1)) { sid = p.Sid; return true; }
        sid = 0;
        return false;
    }

    /// <summary>tegra241_cmdqv_destroy_vintf_user.</summary>
    public override void Destroy(Viommu viommu) => Cmdqv.RemoveVintf(this);

    /// <summary>tegra241_vintf_init_vsid: a vSID wider than 32 bits EINVAL; the lowest free SID pair (ENOSPC: none).</summary>
    public override Errno VdeviceInit(Vdevice vdev)
    {
        if (vdev.VirtId > uint.MaxValue) return Errno.EINVAL;
        int sidx = Array.FindIndex(_sids, s => s is null);
        if (sidx < 0) return Errno.ENOSPC;
        _sids[sidx] = (Smmu.StreamId(vdev.Device.Spec), ((uint)vdev.VirtId << 1) | 1);
        vdev.DriverData = sidx;
        return Errno.OK;
    }

    /// <summary>tegra241_vintf_destroy_vsid.</summary>
    public override void VdeviceDestroy(Vdevice vdev)
    {
        if (vdev.DriverData is int sidx) _sids[sidx] = null;
    }

    /// <summary>tegra241_vintf_get_vcmdq_size: only IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV.</summary>
    public override bool GetHwQueueSize(Viommu viommu, uint type) => type == IommuHwQueueType.TEGRA241_CMDQV;

    /// <summary>
    /// tegra241_vintf_alloc_lvcmdq_user, in its order: type (EOPNOTSUPP), index below the VINTF's LVCMDQ count
    /// (EINVAL), not allocated yet (EEXIST), the previous index allocated (EIO: the hardware maps LVCMDQs in
    /// ascending order), length a power of two in [32, 2^(IDR1.CMDQS + 4)] (EINVAL), the base within VCMDQ_ADDR and
    /// aligned to the length (EINVAL). The queue then depends on the previous one, which cannot be destroyed first.
    /// </summary>
    public override Errno HwQueueInitPhys(HwQueue hwQueue, uint index, ulong basePa)
    {
        if (hwQueue.QueueType != IommuHwQueueType.TEGRA241_CMDQV) return Errno.EOPNOTSUPP;
        if (index >= _lvcmdqs.Length) return Errno.EINVAL;
        if (_lvcmdqs[index] is not null) return Errno.EEXIST;
        Tegra241Vcmdq? prev = null;
        if (index > 0)
        {
            prev = _lvcmdqs[index - 1];
            if (prev is null) return Errno.EIO;
        }
        int maxNShift = (int)((Smmu.ReadIdr(1) >> 21) & 0x1F); // IDR1.CMDQS
        ulong length = hwQueue.Length;
        if (!ulong.IsPow2(length) || length < 32 || length > 1UL << (maxNShift + Tegra241Cmdqv.CMDQ_ENT_SZ_SHIFT)) return Errno.EINVAL;
        int log2Size = System.Numerics.BitOperations.Log2(length) - Tegra241Cmdqv.CMDQ_ENT_SZ_SHIFT;
        if ((basePa & ~Tegra241Cmdqv.VCMDQ_ADDR) != 0 || (basePa & (length - 1)) != 0) return Errno.EINVAL;
        // iommufd_hw_queue_depend: the previous queue is held until this one goes.
        prev?.HwQueue.Get();
        var vcmdq = new Tegra241Vcmdq(this, hwQueue, (int)index, prev, basePa, log2Size, Smmu.CreateGuestQueue(basePa & Tegra241Cmdqv.VCMDQ_ADDR, log2Size));
        _lvcmdqs[index] = vcmdq;
        hwQueue.DriverData = vcmdq;
        return Errno.OK;
    }

    /// <summary>tegra241_vintf_destroy_lvcmdq_user: the queue is unmapped and its dependency on the previous one dropped.</summary>
    public override void HwQueueDestroy(HwQueue hwQueue)
    {
        if (hwQueue.DriverData is not Tegra241Vcmdq q) return;
        _lvcmdqs[q.Lidx] = null;
        q.Prev?.HwQueue.Put();
    }
}

/// <summary>
/// struct tegra241_vcmdq for a user LVCMDQ: 2^Log2Size commands at host physical <see cref="BasePa"/> (the guest's
/// queue memory) that the hardware consumes directly, with its own consumer (<see cref="Queue"/>). <see cref="Submit"/>
/// is what the guest does: write commands at PROD in its memory and write PROD to the VINTF page0, then poll CONS;
/// the VINTF replaces vSIDs (SID_MATCH → SID_REPLACE) and forces its VMID. No VMM and no host kernel is involved.
/// </summary>
public sealed class Tegra241Vcmdq(Tegra241Vintf vintf, HwQueue hwQueue, int lidx, Tegra241Vcmdq? prev, ulong basePa, int log2Size, CommandQueue queue)
{
    /// <summary>The hardware queue over the guest's memory.</summary>
    public CommandQueue Queue { get; } = queue;

    public Tegra241Vintf Vintf { get; } = vintf;
    public HwQueue HwQueue { get; } = hwQueue;
    public int Lidx { get; } = lidx;
    public Tegra241Vcmdq? Prev { get; } = prev;
    public ulong BasePa { get; } = basePa;
    public int Log2Size { get; } = log2Size;

    /// <summary>Commands the VINTF refused (an unknown vSID or a command it does not accept): LVCMDQ_ERR_MAP bits in hardware.</summary>
    public long Errors { get; private set; }

    /// <summary>Commands the hardware executed from this queue.</summary>
    public long Executed { get; private set; }

    /// <summary>
    /// The guest's commands as raw words. The VINTF accepts the invalidation commands a guest may send
    /// (TLBI_NH_*, ATC_INV, CFGI_CD*, CMD_SYNC) and rewrites vSID/VMID; anything else, or a vSID without a
    /// SID_MATCH, raises the queue's error (EIO to the caller here). Returns how many were consumed.
    /// </summary>
    public Errno Submit(ReadOnlySpan<(ulong C0, ulong C1)> cmds, out int consumed)
    {
        consumed = 0;
        var converted = new List<SmmuCommand>(cmds.Length);
        foreach (var (c0Raw, c1Raw) in cmds)
        {
            ulong c0 = c0Raw, c1 = c1Raw;
            if ((SmmuOpcode)(byte)c0 == SmmuOpcode.CmdSync)
            {
                converted.Add(SmmuCommand.Decode(c0, c1));
                continue;
            }
            Errno rc = ArmVsmmuUserData.ConvertUserCmd(ref c0, ref c1, Vintf.Vmid,
                vsid => Vintf.TryMatchSid(vsid, out uint sid) ? (true, sid) : (false, 0u));
            if (rc != Errno.OK)
            {
                Errors++;
                break;
            }
            converted.Add(SmmuCommand.Decode(c0, c1));
        }
        // The guest fills at most the free slots at a time and waits for CONS to move on (as a driver does).
        for (int at = 0; at < converted.Count;)
        {
            int n = (int)Math.Min((uint)(converted.Count - at), Queue.FreeSlots);
            if (n == 0 || !Queue.Submit(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(converted).Slice(at, n))) return Errno.EIO;
            Vintf.Smmu.WaitForQueue(Queue);
            at += n;
        }
        consumed = converted.Count;
        Executed += consumed;
        return consumed == cmds.Length ? Errno.OK : Errno.EIO;
    }
}
