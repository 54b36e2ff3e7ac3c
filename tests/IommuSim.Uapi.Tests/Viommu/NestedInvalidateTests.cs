using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Iommufd;
using static IommuSim.Uapi.Driver.ArmSmmuV3.ArmVsmmuUserData;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>HWPT_ALLOC on a vIOMMU with a guest STE (iommufd_viommu_alloc_hwpt_nested, arm_vsmmu_alloc_domain_nested,
/// arm_smmu_validate_vste) and HWPT_INVALIDATE on a vIOMMU (iommufd_hwpt_invalidate, arm_vsmmu_cache_invalidate,
/// arm_vsmmu_convert_user_cmd, arm_vsmmu_vsid_to_sid).</summary>
public class NestedInvalidateTests
{
    private const ulong CdTable = 0x40_0000; // a guest IPA
    private static readonly ulong S1Ste0 = STRTAB_STE_0_V | ((ulong)STRTAB_STE_0_CFG_S1_TRANS << 1) | CdTable;

    private static IommuHwptAlloc Nested(ViommuSim v, uint viommu, ulong ste0, ulong ste1 = 0, uint flags = 0) => new()
    {
        dev_id = v.D3.Id, pt_id = viommu, flags = flags, data_type = IommuHwptDataType.ARM_SMMUV3,
        data_arm_smmuv3 = new IommuHwptArmSmmuv3 { ste = [ste0, ste1] },
    };

    /// <summary>arm_smmu_validate_vste: what a guest may put in the two STE words, and what becomes of EATS.</summary>
    [Theory]
    [InlineData(0x0UL, 0x0UL, "OK", false)]                                            // non-valid: accepted (zeroed), an abort STE
    [InlineData(0xFFFF_0000_0000_0000UL, 0xFFFFUL, "OK", false)]                       // non-valid with junk: zeroed
    [InlineData(0x1UL | (5UL << 1) | 0x40_0000UL, 1UL << 28, "OK", true)]               // S1_TRANS, EATS = TRANS: ATS on
    [InlineData(0x1UL | (4UL << 1), 1UL << 28, "OK", false)]                           // bypass ignores EATS
    [InlineData(0x1UL | (0UL << 1), 0UL, "OK", false)]                                 // abort
    [InlineData(0x1UL | (6UL << 1), 0UL, "EIO", false)]                                // S2_TRANS is the host's
    [InlineData(0x1UL | (7UL << 1), 0UL, "EIO", false)]                                // NESTED too
    [InlineData(0x1UL | (5UL << 1) | (1UL << 56), 0UL, "EIO", false)]                  // a bit outside NESTING_ALLOWED (word 0)
    [InlineData(0x1UL | (5UL << 1), 1UL << 19, "EIO", false)]                          // MEV is the host's (word 1)
    [InlineData(0x1UL | (5UL << 1), 2UL << 28, "EIO", false)]                          // EATS = S1CHK
    public void Validate_vste(ulong ste0, ulong ste1, string expected, bool ats)
    {
        ulong[] ste = [ste0, ste1];
        Assert.Equal(expected, ValidateVste(ste, out bool enableAts) is var rc && rc == Errno.OK ? "OK" : rc.ToString());
        Assert.Equal(ats, enableAts);
        if (expected == "OK") Assert.Equal(0UL, ste[1] & STRTAB_STE_1_EATS);
        if ((ste0 & 1) == 0) Assert.Equal([0UL, 0UL], ste);
    }

    /// <summary>iommufd_hwpt_alloc with a vIOMMU pt_id: data_type/data_len agreement (EINVAL), flags other than
    /// FAULT_ID_VALID (EOPNOTSUPP), the driver's type check (EINVAL) and vSTE check (EIO); the nested HWPT holds the
    /// vIOMMU, whose stage 2 is its parent, and cannot be invalidated itself (no cache_invalidate_user).</summary>
    [Fact]
    public void Nested_hwpt_from_a_guest_ste()
    {
        var v = new ViommuSim();
        uint viommu = v.Viommu();
        Assert.Equal(Errno.EINVAL, v.Ctx.HwptAlloc(new IommuHwptAlloc { dev_id = v.D3.Id, pt_id = viommu, data_type = IommuHwptDataType.ARM_SMMUV3 }));
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.HwptAlloc(Nested(v, viommu, S1Ste0, flags: IommuHwptAllocFlags.PASID)));
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.HwptAlloc(Nested(v, viommu, S1Ste0, flags: IommuHwptAllocFlags.NEST_PARENT)));
        var vtd = new IommuHwptAlloc { dev_id = v.D3.Id, pt_id = viommu, data_type = IommuHwptDataType.VTD_S1, data = new IommuHwptVtdS1 { addr_width = 48 } };
        Assert.Equal(Errno.EINVAL, v.Ctx.HwptAlloc(vtd));                                  // iommu_copy_struct_from_user: wrong type
        Assert.Equal(Errno.EIO, v.Ctx.HwptAlloc(Nested(v, viommu, S1Ste0 | (6UL << 1))));

        var ok = Nested(v, viommu, S1Ste0, 1UL << 28);
        Assert.Equal(Errno.OK, v.Ctx.HwptAlloc(ok));
        var hwpt = (HwptNested)v.Ctx.Lookup(ok.out_hwpt_id)!;
        var domain = Assert.IsType<SmmuHostSim.HostNestedDomain>(hwpt.NestedDomain);
        Assert.Equal(S1Ste0, domain.Ste0);
        Assert.True(domain.EnableAts);
        Assert.Equal(0UL, domain.Ste1 & STRTAB_STE_1_EATS);
        Assert.Same(v.Ctx.Lookup(v.Parent), hwpt.Parent);
        Assert.Equal(Errno.EBUSY, v.Destroy(viommu));
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.HwptInvalidate(new IommuHwptInvalidate { hwpt_id = ok.out_hwpt_id }));
        Assert.Equal(Errno.OK, v.Destroy(ok.out_hwpt_id));
        Assert.Equal(Errno.OK, v.Destroy(viommu));
    }

    private static (ulong, ulong) Cmd(SmmuCommand c)
    {
        c.Encode(out ulong d0, out ulong d1);
        return (d0, d1);
    }

    private static IommuHwptInvalidate Inv(uint id, params (ulong C0, ulong C1)[] cmds) => new()
    {
        hwpt_id = id, data_type = IommuHwptInvalidateDataType.VIOMMU_ARM_SMMUV3, entry_len = 16, entry_num = (uint)cmds.Length,
        data_arm_smmuv3 = cmds.Length == 0 ? null : cmds.Select(c => new IommuViommuArmSmmuv3Invalidate { cmd0 = c.C0, cmd1 = c.C1 }).ToArray(),
    };

    /// <summary>arm_vsmmu_convert_user_cmd: the VMID is the vIOMMU's whatever the guest wrote, TLBI_NSNH_ALL becomes
    /// TLBI_NH_ALL, the vSID of ATC_INV/CFGI_CD/CFGI_CD_ALL becomes the device's StreamID; every batch ends with CMD_SYNC.</summary>
    [Fact]
    public void Guest_commands_get_the_vmid_and_the_physical_sid()
    {
        var v = new ViommuSim();
        uint viommu = v.Viommu();
        v.Vdevice(viommu, v.D3, 0x18);
        ushort vmid = ((ArmVsmmu)((Iommufd.Viommu)v.Ctx.Lookup(viommu)!).DriverData!).Vmid;
        var cmd = Inv(viommu,
            Cmd(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Vmid = 0x77, Asid = 3, Address = 0x10_0000, Leaf = true }),
            Cmd(new SmmuCommand { Opcode = SmmuOpcode.TlbiNsnhAll }),
            Cmd(new SmmuCommand { Opcode = SmmuOpcode.CfgiCdAll, Sid = 0x18 }),
            Cmd(new SmmuCommand { Opcode = SmmuOpcode.AtcInv, Sid = 0x18, Address = 0, Pages = 52 }));
        Assert.Equal(Errno.OK, v.Ctx.HwptInvalidate(cmd));
        Assert.Equal(4u, cmd.entry_num);
        var issued = v.Host.Batches.Single();
        Assert.Equal(vmid, issued[0].Vmid);
        Assert.Equal(3, issued[0].Asid);
        Assert.Equal(SmmuOpcode.TlbiNhAll, issued[1].Opcode);
        Assert.Equal(vmid, issued[1].Vmid);
        Assert.Equal(Sim.Dev3.Value, issued[2].Sid);
        Assert.Equal(Sim.Dev3.Value, issued[3].Sid);
        Assert.True(v.Host.BatchSync.Single());
        Assert.Equal(1, v.Host.Smmu.CommandQueue.Syncs);
    }

    /// <summary>iommufd_hwpt_invalidate + arm_vsmmu_cache_invalidate errors: __reserved EOPNOTSUPP; entries without data
    /// EINVAL; data type EINVAL; entry_num 0 EINVAL (iommu_copy_struct_from_full_user_array); an unknown vSID or an opcode
    /// the vIOMMU does not take EIO with entry_num = the commands before it.</summary>
    [Theory]
    [InlineData("reserved", "EOPNOTSUPP", 0u)]
    [InlineData("nodata", "EINVAL", 0u)]
    [InlineData("vtdtype", "EINVAL", 0u)]
    [InlineData("empty", "EINVAL", 0u)]
    [InlineData("short", "EFAULT", 0u)]
    [InlineData("badvsid", "EIO", 1u)]
    [InlineData("cfgi_ste", "EIO", 2u)]
    [InlineData("tlbi_s2", "EIO", 1u)]
    [InlineData("cmd_sync", "EIO", 0u)]
    public void Invalidate_errors(string what, string expected, uint handled)
    {
        var v = new ViommuSim();
        uint viommu = v.Viommu();
        v.Vdevice(viommu, v.D3, 0x18);
        var tlbi = Cmd(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAsid, Asid = 1 });
        IommuHwptInvalidate c = what switch
        {
            "reserved" => Inv(viommu, tlbi),
            "nodata" => new IommuHwptInvalidate { hwpt_id = viommu, data_type = 1, entry_len = 16, entry_num = 1 },
            "vtdtype" => Inv(viommu, tlbi),
            "empty" => Inv(viommu),
            "short" => Inv(viommu, tlbi),
            "badvsid" => Inv(viommu, tlbi, Cmd(new SmmuCommand { Opcode = SmmuOpcode.CfgiCd, Sid = 0x19 })),
            "cfgi_ste" => Inv(viommu, tlbi, tlbi, Cmd(new SmmuCommand { Opcode = SmmuOpcode.CfgiSte, Sid = 0x18 })),
            "tlbi_s2" => Inv(viommu, tlbi, Cmd(new SmmuCommand { Opcode = SmmuOpcode.TlbiS2Ipa, Address = 0x1000 })),
            _ => Inv(viommu, Cmd(new SmmuCommand { Opcode = SmmuOpcode.CmdSync })),
        };
        if (what == "reserved") c.__reserved = 1;
        if (what == "vtdtype") c.data_type = IommuHwptInvalidateDataType.VTD_S1;
        if (what == "short") c.entry_num = 2;
        Assert.Equal(expected, v.Ctx.HwptInvalidate(c).ToString());
        Assert.Equal(handled, c.entry_num);
        // Converted commands of an unfinished batch are counted but never reach the hardware.
        Assert.Empty(v.Host.Batches);
    }

    /// <summary>arm_vsmmu_cache_invalidate issues CMDQ_BATCH_ENTRIES − 1 = 63 commands per batch, each with a CMD_SYNC;
    /// a bad command in the third batch leaves the first two issued and entry_num at its index.</summary>
    [Fact]
    public void Batches_of_63_with_a_sync_each()
    {
        var v = new ViommuSim();
        uint viommu = v.Viommu();
        var tlbi = Cmd(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAsid, Asid = 1 });
        var cmds = Enumerable.Repeat(tlbi, 130).ToArray();
        var c = Inv(viommu, cmds);
        Assert.Equal(Errno.OK, v.Ctx.HwptInvalidate(c));
        Assert.Equal(130u, c.entry_num);
        Assert.Equal([63, 63, 4], v.Host.Batches.Select(b => b.Length));
        v.Host.Batches.Clear();
        var bad = Inv(viommu, [.. cmds, .. Enumerable.Repeat(tlbi, 10)]);
        bad.data_arm_smmuv3![130] = new IommuViommuArmSmmuv3Invalidate { cmd0 = 0x03 };
        Assert.Equal(Errno.EIO, v.Ctx.HwptInvalidate(bad));
        Assert.Equal(130u, bad.entry_num);
        Assert.Equal([63, 63], v.Host.Batches.Select(b => b.Length));
    }
}
