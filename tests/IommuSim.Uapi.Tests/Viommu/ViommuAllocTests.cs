using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>IOMMU_VIOMMU_ALLOC and IOMMU_VDEVICE_ALLOC on an SMMUv3: iommufd_viommu_alloc_ioctl,
/// arm_smmu_get_viommu_size, arm_vsmmu_init, tegra241_cmdqv_init_vintf_user, iommufd_vdevice_alloc_ioctl,
/// tegra241_vintf_init_vsid.</summary>
public class ViommuAllocTests
{
    /// <summary>iommufd_viommu_alloc_ioctl's order: flags/DEFAULT, device, get_viommu_size (arm_smmu_get_viommu_size:
    /// FEAT_NESTING, canwbs or S2FWB, the type), HWPT_PAGING, nest_parent, viommu_init (arm_vsmmu_init: this SMMU's S2).</summary>
    [Fact]
    public void Alloc_checks_in_the_kernels_order()
    {
        var v = new ViommuSim();
        uint arm = (uint)IommuViommuType.ARM_SMMUV3;
        Errno Alloc(uint flags, uint type, uint dev, uint hwpt) => v.Ctx.ViommuAlloc(new IommuViommuAlloc { flags = flags, type = type, dev_id = dev, hwpt_id = hwpt });
        Assert.Equal(Errno.EOPNOTSUPP, Alloc(1, arm, 99, 99));
        Assert.Equal(Errno.EOPNOTSUPP, Alloc(0, 0, 99, 99));
        Assert.Equal(Errno.ENOENT, Alloc(0, arm, 99, 99));
        Assert.Equal(Errno.EOPNOTSUPP, Alloc(0, (uint)IommuViommuType.TEGRA241_CMDQV, v.D3.Id, 99)); // no CMDQV on this SMMU
        Assert.Equal(Errno.EOPNOTSUPP, Alloc(0, 7, v.D3.Id, 99));
        Assert.Equal(Errno.ENOENT, Alloc(0, arm, v.D3.Id, v.Ioas));                                   // an IOAS is not a HWPT_PAGING
        var plain = new IommuHwptAlloc { dev_id = v.D3.Id, pt_id = v.Ioas };
        Assert.Equal(Errno.OK, v.Ctx.HwptAlloc(plain));
        Assert.Equal(Errno.EINVAL, Alloc(0, arm, v.D3.Id, plain.out_hwpt_id));                       // not a nest parent
        Assert.Equal(Errno.OK, Alloc(0, arm, v.D3.Id, v.Parent));
        // The vIOMMU holds its stage 2.
        Assert.Equal(Errno.EBUSY, v.Destroy(v.Parent));
    }

    [Theory]
    [InlineData(false, true, true)]   // no ARM_SMMU_FEAT_NESTING
    [InlineData(true, false, false)]  // neither a coherent master (canwbs) nor S2FWB
    public void Smmu_without_what_nesting_needs_has_no_viommu(bool nesting, bool s2fwb, bool coherent)
    {
        var v = new ViommuSim(nesting: nesting, s2fwb: s2fwb, coherent: coherent);
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.ViommuAlloc(new IommuViommuAlloc { type = 1, dev_id = v.D3.Id, hwpt_id = v.Parent }));
    }

    /// <summary>arm_vsmmu_init takes the VMID of the stage-2 parent; the vIOMMU forces it into the guest's TLBIs.</summary>
    [Fact]
    public void Vsmmu_takes_the_parents_vmid()
    {
        var v = new ViommuSim();
        uint id = v.Viommu();
        var viommu = (Viommu)v.Ctx.Lookup(id)!;
        var vsmmu = Assert.IsType<ArmVsmmu>(viommu.DriverData);
        Assert.Equal(((HwptPaging)v.Ctx.Lookup(v.Parent)!).PagingDomain.DomainId, vsmmu.Vmid);
    }

    /// <summary>tegra241_cmdqv_init_vintf_user: data required (EINVAL), at least 16 bytes (EINVAL), a free VINTF (ENOSPC);
    /// the VINTF page0's mmap offset (from SZ_4G) and length (SZ_64K) come back.</summary>
    [Fact]
    public void Tegra241_vintf_needs_its_data_and_returns_the_page0_mmap()
    {
        var v = new ViommuSim(tegra: true);
        uint t = (uint)IommuViommuType.TEGRA241_CMDQV;
        Assert.Equal(Errno.EINVAL, v.Ctx.ViommuAlloc(new IommuViommuAlloc { type = t, dev_id = v.D3.Id, hwpt_id = v.Parent }));
        Assert.Equal(Errno.EINVAL, v.Ctx.ViommuAlloc(new IommuViommuAlloc { type = t, dev_id = v.D3.Id, hwpt_id = v.Parent, data_len = 8, data = new() }));
        var offsets = new List<ulong>();
        // 4 VINTFs in this CMDQV: VINTF0 is the kernel's, three are for users.
        for (int i = 0; i < 3; i++)
        {
            var c = new IommuViommuAlloc { type = t, dev_id = v.D3.Id, hwpt_id = v.Parent, data_len = 16, data = new() };
            Assert.Equal(Errno.OK, v.Ctx.ViommuAlloc(c));
            Assert.Equal(Tegra241Cmdqv.Page0Size, c.data!.out_vintf_mmap_length);
            offsets.Add(c.data.out_vintf_mmap_offset);
        }
        Assert.Equal([1UL << 32, (1UL << 32) + 0x10000, (1UL << 32) + 0x20000], offsets);
        Assert.Equal(Errno.ENOSPC, v.Ctx.ViommuAlloc(new IommuViommuAlloc { type = t, dev_id = v.D3.Id, hwpt_id = v.Parent, data_len = 16, data = new() }));
    }

    /// <summary>iommufd_vdevice_alloc_ioctl: vIOMMU, device, one vDEVICE per device, one per virtual id; it holds the vIOMMU
    /// and the device; destroying it frees both the id and the device's slot.</summary>
    [Fact]
    public void Vdevice_alloc_checks_and_references()
    {
        var v = new ViommuSim();
        uint viommu = v.Viommu();
        Errno Alloc(uint vi, uint dev, ulong vsid) => v.Ctx.VdeviceAlloc(new IommuVdeviceAlloc { viommu_id = vi, dev_id = dev, virt_id = vsid });
        Assert.Equal(Errno.ENOENT, Alloc(99, v.D3.Id, 1));
        Assert.Equal(Errno.ENOENT, Alloc(viommu, 99, 1));
        uint vd = v.Vdevice(viommu, v.D3, 0x18);
        Assert.Equal(Errno.EEXIST, Alloc(viommu, v.D3.Id, 0x20));  // idev->vdev
        Assert.Equal(Errno.EEXIST, Alloc(viommu, v.D4.Id, 0x18));  // xa_cmpxchg on the virtual id
        Assert.Null(v.D4.Vdevice);
        Assert.Equal(Errno.EBUSY, v.Destroy(viommu));
        Assert.Equal(Errno.OK, v.Destroy(vd));
        Assert.Null(v.D3.Vdevice);
        Assert.Equal(Errno.OK, Alloc(viommu, v.D4.Id, 0x18));
    }

    /// <summary>tegra241_vintf_init_vsid: a vSID wider than 32 bits EINVAL; SID_MATCH/SID_REPLACE pairs run out (ENOSPC);
    /// the pair maps the vSID to the device's StreamID in hardware, and is freed with the vDEVICE.</summary>
    [Fact]
    public void Tegra241_vsid_pairs()
    {
        var v = new ViommuSim(tegra: true);
        uint viommu = v.Viommu(IommuViommuType.TEGRA241_CMDQV);
        var vintf = Assert.IsType<Tegra241Vintf>(((Viommu)v.Ctx.Lookup(viommu)!).DriverData);
        Assert.Equal(Errno.EINVAL, v.Ctx.VdeviceAlloc(new IommuVdeviceAlloc { viommu_id = viommu, dev_id = v.D3.Id, virt_id = 1UL << 32 }));
        Assert.Null(v.D3.Vdevice);
        uint vd3 = v.Vdevice(viommu, v.D3, 0x18);
        Assert.True(vintf.TryMatchSid(0x18, out uint sid));
        Assert.Equal(Sim.Dev3.Value, sid);
        uint vd4 = v.Vdevice(viommu, v.D4, 0x20); // this CMDQV has two pairs per VINTF
        Assert.Equal(Errno.OK, v.Destroy(vd4));
        Assert.False(vintf.TryMatchSid(0x20, out _));
        _ = vd3;
    }
}
