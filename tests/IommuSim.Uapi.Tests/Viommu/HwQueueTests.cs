using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>IOMMU_HW_QUEUE_ALLOC: iommufd_hw_queue_alloc_ioctl, iommufd_hw_queue_alloc_phys and the Tegra241 CMDQV's
/// tegra241_vintf_alloc_lvcmdq_user / tegra241_vintf_destroy_lvcmdq_user; the guest's commands on its VCMDQ.</summary>
public class HwQueueTests
{
    private const ulong QueueIova = 0x10_0000; // inside guest RAM (GPA = IOVA)

    private static IommuHwQueueAlloc Q(uint viommu, ulong iova = QueueIova, ulong length = 0x800, uint index = 0, uint type = IommuHwQueueType.TEGRA241_CMDQV)
        => new() { viommu_id = viommu, type = type, index = index, nesting_parent_iova = iova, length = length };

    /// <summary>The core's checks come first, in iommufd_hw_queue_alloc_ioctl's order: flags/DEFAULT, length 0, the
    /// range wrapping, the vIOMMU, a vIOMMU without HW queue ops (plain ARM_SMMUV3), the type the driver sizes 0.</summary>
    [Fact]
    public void Core_checks_in_the_kernels_order()
    {
        var v = new ViommuSim(tegra: true);
        uint arm = v.Viommu();
        uint tegra = v.Viommu(IommuViommuType.TEGRA241_CMDQV);
        var c = Q(99, length: 0, type: 0);
        c.flags = 1;
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.HwQueueAlloc(c));
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.HwQueueAlloc(Q(99, length: 0, type: 0)));
        Assert.Equal(Errno.EINVAL, v.Ctx.HwQueueAlloc(Q(99, length: 0)));
        Assert.Equal(Errno.EOVERFLOW, v.Ctx.HwQueueAlloc(Q(99, iova: ulong.MaxValue - 0x10, length: 0x20)));
        Assert.Equal(Errno.ENOENT, v.Ctx.HwQueueAlloc(Q(99)));
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.HwQueueAlloc(Q(arm)));
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.HwQueueAlloc(Q(tegra, type: 2)));
        Assert.Equal(Errno.ENOENT, v.Ctx.HwQueueAlloc(Q(tegra, iova: 0x4000_0000)));   // not mapped in the nest parent's IOAS
        Assert.Equal(Errno.OK, v.Ctx.HwQueueAlloc(Q(tegra)));
    }

    /// <summary>iommufd_hw_queue_alloc_phys: the queue's pages must be one physical run (EFAULT), checked before the driver.</summary>
    [Fact]
    public void Queue_pages_must_be_physically_contiguous()
    {
        var v = new ViommuSim(tegra: true);
        uint tegra = v.Viommu(IommuViommuType.TEGRA241_CMDQV);
        ulong a = v.S.Mmap(0x20_0000), b = v.S.Mmap(0x20_0000);
        const ulong iova = 0x4000_0000;
        Assert.Equal(Errno.OK, v.S.Map(v.Ioas, b, 0x1000, iova));          // b's first page, then a's: not adjacent in memory
        Assert.Equal(Errno.OK, v.S.Map(v.Ioas, a, 0x1000, iova + 0x1000));
        Assert.Equal(Errno.EFAULT, v.Ctx.HwQueueAlloc(Q(tegra, iova, 0x2000)));
        Assert.Equal(Errno.OK, v.Ctx.IoasUnmap(new IommuIoasUnmap { ioas_id = v.Ioas, iova = iova, length = 0x2000 })); // the pin was dropped
    }

    /// <summary>tegra241_vintf_alloc_lvcmdq_user's order: index range (EINVAL), taken (EEXIST), ascending order (EIO),
    /// length a power of two in [32, 2^(IDR1.CMDQS + 4)] (EINVAL), base aligned to the length (EINVAL).</summary>
    [Theory]
    [InlineData(0x10_0000UL, 0x800UL, 2u, "EINVAL")]   // this CMDQV has 2 LVCMDQs per VINTF
    [InlineData(0x10_0000UL, 0x800UL, 1u, "EIO")]      // index 1 before index 0
    [InlineData(0x10_0000UL, 0x600UL, 0u, "EINVAL")]   // not a power of two
    [InlineData(0x10_0000UL, 0x10UL, 0u, "EINVAL")]    // below 32 bytes
    [InlineData(0x10_0000UL, 0x1000UL, 0u, "EINVAL")]  // above 2^(7 + 4) bytes
    [InlineData(0x10_0400UL, 0x800UL, 0u, "EINVAL")]   // not aligned to its length
    [InlineData(0x10_0800UL, 0x800UL, 0u, "OK")]
    public void Tegra241_lvcmdq_checks(ulong iova, ulong length, uint index, string expected)
    {
        var v = new ViommuSim(tegra: true);
        uint tegra = v.Viommu(IommuViommuType.TEGRA241_CMDQV);
        Assert.Equal(expected, v.Ctx.HwQueueAlloc(Q(tegra, iova, length, index)).ToString());
    }

    /// <summary>The queue pins its memory (IOAS_UNMAP EBUSY: the internal access has no unmap op), holds its vIOMMU, and
    /// LVCMDQs go in ascending and come down in descending order (iommufd_hw_queue_depend: EBUSY otherwise).</summary>
    [Fact]
    public void Queues_pin_memory_and_depend_on_the_previous_one()
    {
        var v = new ViommuSim(tegra: true);
        uint tegra = v.Viommu(IommuViommuType.TEGRA241_CMDQV);
        var q0 = Q(tegra);
        Assert.Equal(Errno.OK, v.Ctx.HwQueueAlloc(q0));
        Assert.Equal(Errno.EEXIST, v.Ctx.HwQueueAlloc(Q(tegra, QueueIova + 0x800)));
        var q1 = Q(tegra, QueueIova + 0x800, index: 1);
        Assert.Equal(Errno.OK, v.Ctx.HwQueueAlloc(q1));
        var hwq = (HwQueue)v.Ctx.Lookup(q0.out_hw_queue_id)!;
        Assert.Equal(QueueIova, hwq.BaseAddr);
        Assert.NotEqual(hwq.BaseAddr, hwq.BasePa); // the host physical address of guest RAM
        Assert.Equal(Errno.EBUSY, v.Ctx.IoasUnmap(new IommuIoasUnmap { ioas_id = v.Ioas, iova = 0, length = ViommuSim.RamBytes }));
        Assert.Equal(Errno.EBUSY, v.Destroy(tegra));
        Assert.Equal(Errno.EBUSY, v.Destroy(q0.out_hw_queue_id));
        Assert.Equal(Errno.OK, v.Destroy(q1.out_hw_queue_id));
        Assert.Equal(Errno.OK, v.Destroy(q0.out_hw_queue_id));
        Assert.Equal(Errno.OK, v.Destroy(tegra));
        Assert.Equal(Errno.OK, v.Ctx.IoasUnmap(new IommuIoasUnmap { ioas_id = v.Ioas, iova = 0, length = ViommuSim.RamBytes }));
    }

    /// <summary>A guest's commands on its VCMDQ reach the SMMU with no ioctl: the VINTF turns the vSID into the StreamID
    /// (SID_MATCH/SID_REPLACE) and forces its VMID; a vSID without a pair stops the queue.</summary>
    [Fact]
    public void Guest_commands_on_the_vcmdq_skip_the_vmm()
    {
        var v = new ViommuSim(tegra: true);
        uint tegra = v.Viommu(IommuViommuType.TEGRA241_CMDQV);
        v.Vdevice(tegra, v.D3, 0x18);
        var q = Q(tegra);
        Assert.Equal(Errno.OK, v.Ctx.HwQueueAlloc(q));
        var vcmdq = Assert.IsType<Tegra241Vcmdq>(((HwQueue)v.Ctx.Lookup(q.out_hw_queue_id)!).DriverData);
        var vintf = vcmdq.Vintf;
        static (ulong, ulong) Enc(SmmuCommand c) { c.Encode(out ulong a, out ulong b); return (a, b); }
        Assert.Equal(Errno.OK, vcmdq.Submit([
            Enc(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Asid = 1, Address = 0x1000, Vmid = 0x55 }),
            Enc(new SmmuCommand { Opcode = SmmuOpcode.AtcInv, Sid = 0x18 }),
            Enc(new SmmuCommand { Opcode = SmmuOpcode.CmdSync })], out int consumed));
        Assert.Equal(3, consumed);
        Assert.Empty(v.Host.Batches);                   // nothing went through the host's command queue
        Assert.Equal(0, v.Host.Smmu.CommandQueue.Executed);
        Assert.Equal(3, vcmdq.Queue.Executed);          // the VCMDQ's own consumer, reading guest memory
        Assert.Equal(1, vcmdq.Queue.Syncs);
        // The commands sit in the guest's queue memory as the hardware read them: VMID and StreamID replaced.
        var words = Enumerable.Range(0, 2).Select(i => SmmuCommand.Decode(v.Host.Memory.ReadU64(vcmdq.BasePa + 16UL * (ulong)i),
            v.Host.Memory.ReadU64(vcmdq.BasePa + 16UL * (ulong)i + 8))).ToArray();
        Assert.Equal(vintf.Vmid, words[0].Vmid);
        Assert.Equal(Sim.Dev3.Value, words[1].Sid);
        Assert.Equal(Errno.EIO, vcmdq.Submit([Enc(new SmmuCommand { Opcode = SmmuOpcode.CfgiCdAll, Sid = 0x19 })], out consumed));
        Assert.Equal((0, 1L), (consumed, vcmdq.Errors));
    }
}
