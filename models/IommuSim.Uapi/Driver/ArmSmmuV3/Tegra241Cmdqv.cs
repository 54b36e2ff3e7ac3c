using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// The NVIDIA Tegra241 CMDQV extension of an SMMUv3 (tegra241-cmdqv.c): virtual interfaces (VINTFs), each with
/// logical virtual command queues (LVCMDQs) that the hardware reads straight from guest memory, with
/// SID_MATCH/SID_REPLACE pairs turning the guest's vSIDs into StreamIDs and the VINTF's VMID forced on its
/// commands. VINTF0 belongs to the host kernel; user VINTFs come from 1 … num_vintfs − 1.
/// </summary>
public sealed class Tegra241Cmdqv
{
    /// <summary>VCMDQ_ADDR: GENMASK(47, 5) of the VCMDQ_BASE register.</summary>
    public const ulong VCMDQ_ADDR = ((1UL << 48) - 1) & ~0x1FUL;

    /// <summary>CMDQ_ENT_SZ_SHIFT: a command is 16 bytes.</summary>
    public const int CMDQ_ENT_SZ_SHIFT = 4;

    /// <summary>The VINTF page0 user space mmaps (SZ_64K).</summary>
    public const ulong Page0Size = 0x10000;

    /// <summary>iommufd_viommu_alloc_mmap hands out offsets from SZ_4G upwards (in its maple tree of pgoffs).</summary>
    public const ulong MmapBase = 1UL << 32;

    private readonly bool[] _vintfUsed;

    /// <param name="host">The SMMU the CMDQV extends.</param>
    /// <param name="numVintfLog2">CMDQV_PARAM.NUM_VINTF_LOG2 (assumption: 4, 16 VINTFs).</param>
    /// <param name="numVcmdqLog2">CMDQV_PARAM.NUM_VCMDQ_LOG2 (assumption: 7, 128 VCMDQs).</param>
    /// <param name="numSidPerVmLog2">CMDQV_PARAM.NUM_SID_PER_VM_LOG2 (assumption: 4, 16 SIDs per VINTF).</param>
    public Tegra241Cmdqv(IArmSmmuV3Host host, int numVintfLog2 = 4, int numVcmdqLog2 = 7, int numSidPerVmLog2 = 4)
    {
        Host = host;
        NumVintfs = 1 << numVintfLog2;
        NumVcmdqs = 1 << numVcmdqLog2;
        NumLvcmdqsPerVintf = NumVcmdqs / NumVintfs;
        NumSidsPerVintf = 1 << numSidPerVmLog2;
        _vintfUsed = new bool[NumVintfs];
        _vintfUsed[0] = true; // the kernel's own VINTF0
    }

    public IArmSmmuV3Host Host { get; }
    public int NumVintfs { get; }
    public int NumVcmdqs { get; }
    public int NumLvcmdqsPerVintf { get; }
    public int NumSidsPerVintf { get; }

    /// <summary>tegra241_cmdqv_get_vintf_size: only IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV.</summary>
    public bool GetViommuSize(uint type) => type == (uint)IommuViommuType.TEGRA241_CMDQV;

    /// <summary>
    /// tegra241_cmdqv_init_vintf_user: driver data is required (EINVAL without), at least its 16 bytes
    /// (iommu_copy_struct_from_user: EINVAL shorter); a free VINTF (ENOSPC); the VINTF's page0 is offered for mmap
    /// and its offset and length written back. The vIOMMU's ops become the VINTF's.
    /// </summary>
    internal Errno InitVintfUser(ArmVsmmu vsmmu, IommuViommuAlloc? userData)
    {
        if (userData is null) return Errno.EINVAL;
        if (userData.data_len < IommuViommuTegra241Cmdqv.Size) return Errno.EINVAL;
        if (userData.data is null) return Errno.EFAULT;
        int idx = Array.IndexOf(_vintfUsed, false, 1);
        if (idx < 0) return Errno.ENOSPC;
        _vintfUsed[idx] = true;
        var vintf = new Tegra241Vintf(this, vsmmu, idx, MmapOffsetFor(vsmmu.Core.Context));
        userData.data.out_vintf_mmap_length = Page0Size;
        userData.data.out_vintf_mmap_offset = vintf.MmapOffset;
        vsmmu.Core.DriverData = vintf;
        vsmmu.Core.Ops = vintf;
        return Errno.OK;
    }

    private readonly List<Tegra241Vintf> _vintfs = [];

    private ulong MmapOffsetFor(IommufdContext ictx)
    {
        // The lowest free 64 KiB slot from SZ_4G in this context's mmap tree.
        ulong off = MmapBase;
        while (_vintfs.Exists(v => ReferenceEquals(v.Core.Context, ictx) && v.MmapOffset == off)) off += Page0Size;
        return off;
    }

    internal void Register(Tegra241Vintf v) => _vintfs.Add(v);

    /// <summary>tegra241_cmdqv_remove_vintf.</summary>
    internal void RemoveVintf(Tegra241Vintf v)
    {
        _vintfUsed[v.Idx] = false;
        _vintfs.Remove(v);
    }
}
