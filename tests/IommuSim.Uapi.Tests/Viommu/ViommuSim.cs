using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>A <see cref="Sim"/> whose kernel has the arm-smmu-v3 vIOMMU ops over <see cref="SmmuHostSim"/>: guest RAM
/// (16 MiB) mapped GPA = IOVA in an IOAS, a nest-parent HWPT on it and two bound devices.</summary>
internal sealed class ViommuSim
{
    public const ulong RamBytes = 16UL << 20;

    public ViommuSim(bool tegra = false, bool nesting = true, bool s2fwb = true, bool coherent = true)
    {
        Host = new SmmuHostSim(nesting, s2fwb, tegra) { Coherent = coherent };
        S.Kernel.ViommuDriver = new ArmVsmmuDriver(Host);
        Ioas = S.IoasAlloc();
        Ram = S.Mmap(RamBytes);
        Assert.Equal(Errno.OK, S.Map(Ioas, Ram, RamBytes, 0));
        D3 = S.Bind(Sim.Dev3);
        D4 = S.Bind(Sim.Dev4);
        var parent = new IommuHwptAlloc { dev_id = D3.Id, pt_id = Ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
        Assert.Equal(Errno.OK, S.Ctx.HwptAlloc(parent));
        Parent = parent.out_hwpt_id;
    }

    public Sim S { get; } = new();
    public SmmuHostSim Host { get; }
    public IommufdContext Ctx => S.Ctx;
    public uint Ioas { get; }
    public ulong Ram { get; }
    public IommufdDevice D3 { get; }
    public IommufdDevice D4 { get; }
    public uint Parent { get; }

    public uint Viommu(IommuViommuType type = IommuViommuType.ARM_SMMUV3)
    {
        var c = new IommuViommuAlloc { type = (uint)type, dev_id = D3.Id, hwpt_id = Parent };
        if (type == IommuViommuType.TEGRA241_CMDQV) { c.data_len = 16; c.data = new IommuViommuTegra241Cmdqv(); }
        Assert.Equal(Errno.OK, Ctx.ViommuAlloc(c));
        return c.out_viommu_id;
    }

    public uint Vdevice(uint viommu, IommufdDevice dev, ulong vsid)
    {
        var c = new IommuVdeviceAlloc { viommu_id = viommu, dev_id = dev.Id, virt_id = vsid };
        Assert.Equal(Errno.OK, Ctx.VdeviceAlloc(c));
        return c.out_vdevice_id;
    }

    public Errno Destroy(uint id) => Ctx.Destroy(new IommuDestroy { id = id });
}
