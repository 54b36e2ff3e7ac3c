using CsCheck;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Smmu;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Tests.Fuzz;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>
/// Random sequences of the vIOMMU calls (allocations on random ids, destroys, invalidations, HW queues) on the SMMUv3
/// platform with a Tegra241 CMDQV: after every call the reference counts are exactly the references the objects
/// hold (iommufd_object users, UapiInvariants), no call throws, and closing the context releases everything.
/// </summary>
public class ViommuLifetimeProperties
{
    [Fact]
    public void Reference_counts_hold_after_every_call()
    {
        Gen.Select(Gen.Int[0, 9], Gen.UInt[0, 12], Gen.UInt[0, 3]).Array[1, 40].Sample(ops =>
        {
            var iommu = new IommuOptions { Architecture = "smmuv3", Smmu = new SmmuOptions { Tegra241Cmdqv = true } };
            var s = new Sim(iommu: iommu);
            uint ioas = s.IoasAlloc();
            ulong ram = s.Mmap(0x100_0000);
            Assert.Equal(Errno.OK, s.Map(ioas, ram, 0x100_0000, 0));
            var dev = s.Bind(Sim.Dev3);
            var parent = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
            Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(parent));
            foreach (var (kind, id, small) in ops)
            {
                _ = kind switch
                {
                    0 => s.Ctx.ViommuAlloc(new IommuViommuAlloc { type = 1 + small % 2, dev_id = dev.Id, hwpt_id = id, data_len = 16, data = new() }),
                    1 => s.Ctx.VdeviceAlloc(new IommuVdeviceAlloc { viommu_id = id, dev_id = dev.Id, virt_id = small }),
                    2 => s.Ctx.VeventqAlloc(new IommuVeventqAlloc { viommu_id = id, type = 1 + small % 2, veventq_depth = small }),
                    3 => s.Ctx.HwQueueAlloc(new IommuHwQueueAlloc { viommu_id = id, type = 1, index = small % 3, nesting_parent_iova = 0x10_0000 + 0x800UL * small, length = 0x800 }),
                    4 => s.Ctx.HwptAlloc(new IommuHwptAlloc { dev_id = dev.Id, pt_id = id, data_type = IommuHwptDataType.ARM_SMMUV3, data_arm_smmuv3 = new() { ste = [small == 0 ? 0 : 0x40_000bUL, 0] } }),
                    5 => s.Ctx.HwptInvalidate(new IommuHwptInvalidate { hwpt_id = id, data_type = 1, entry_len = 16, entry_num = 1, data_arm_smmuv3 = [new() { cmd0 = 0x11 }] }),
                    6 => s.Ctx.IoasUnmap(new IommuIoasUnmap { ioas_id = ioas, iova = 0, length = 0x100_0000 }),
                    7 => s.Ctx.VeventqRead(id, 4096, [], out _),
                    _ => s.Ctx.Destroy(new IommuDestroy { id = id }),
                };
                // The reference part of the fuzzer's invariants (its IOAS part reads VT-d tables).
                UapiInvariants.CheckReferences(s.Ctx.Objects.ToList(), (ok, what) => Assert.True(ok, what));
            }
            s.Ctx.Close();
            Assert.Empty(s.Ctx.Objects);
        }, iter: 150);
    }
}
