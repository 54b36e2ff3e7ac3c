using IommuSim.Uapi.Script;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>The vIOMMU calls of the script language on the default (VT-d) platform, and their parse-time checks.</summary>
public class ViommuScriptTests
{
    private static (int Exit, string Out, string Err) RunText(string text)
    {
        string path = Path.Combine(Path.GetTempPath(), $"viommu-{Guid.NewGuid():N}.uapi");
        File.WriteAllText(path, text);
        try
        {
            var o = new StringWriter();
            var e = new StringWriter();
            int rc = ScriptRunner.Run(path, o, e);
            return (rc, o.ToString(), e.ToString());
        }
        finally { File.Delete(path); }
    }

    /// <summary>On VT-d (intel-iommu has no viommu ops) every vIOMMU call fails as iommufd_viommu_alloc_ioctl and the
    /// allocators that need a vIOMMU do; the new ioctls are in the table (their struct sizes are checked).</summary>
    [Fact]
    public void Vtd_platform_answers_like_the_kernel()
    {
        var (exit, output, err) = RunText("""
            ioas = IOAS_ALLOC
            dev  = DEVICE_BIND_IOMMUFD device=0000:03:00.0
            s2   = HWPT_ALLOC dev_id=$dev pt_id=$ioas flags=NEST_PARENT
            expect EOPNOTSUPP: VIOMMU_ALLOC dev_id=$dev hwpt_id=$s2 type=ARM_SMMUV3
            expect EOPNOTSUPP: VIOMMU_ALLOC dev_id=$dev hwpt_id=$s2 type=TEGRA241_CMDQV
            expect EOPNOTSUPP: VIOMMU_ALLOC dev_id=$dev hwpt_id=$s2 type=DEFAULT
            expect ENOENT: VDEVICE_ALLOC viommu_id=$s2 dev_id=$dev virt_id=0x18
            expect EINVAL: VEVENTQ_ALLOC viommu_id=$s2 type=ARM_SMMUV3 veventq_depth=0
            expect ENOENT: VEVENTQ_ALLOC viommu_id=$s2 type=ARM_SMMUV3 veventq_depth=8
            expect EOPNOTSUPP: VEVENTQ_ALLOC viommu_id=$s2 type=DEFAULT veventq_depth=8
            expect ENOENT: HW_QUEUE_ALLOC viommu_id=$s2 type=TEGRA241_CMDQV nesting_parent_iova=0 length=0x800
            expect EOVERFLOW: HW_QUEUE_ALLOC viommu_id=$s2 type=TEGRA241_CMDQV nesting_parent_iova=0xfffffffffffff000 length=0x2000
            expect ENOENT: VEVENTQ_READ veventq_id=99
            expect EINVAL entry_num=0: HWPT_INVALIDATE hwpt_id=$s2 data_type=VIOMMU_ARM_SMMUV3 cmds=TLBI_NH_ASID/asid=1
            expect EOPNOTSUPP: HWPT_INVALIDATE hwpt_id=$s2 data_type=VIOMMU_ARM_SMMUV3 cmds=TLBI_NH_ASID/asid=1 __reserved=1
            expect OK: IOAS_CHANGE_PROCESS
            expect EOPNOTSUPP: IOAS_CHANGE_PROCESS __reserved=1
            expect EINVAL: VEVENTQ_ALLOC viommu_id=1 type=ARM_SMMUV3 veventq_depth=1 size=28
            expect E2BIG: HW_QUEUE_ALLOC viommu_id=1 type=TEGRA241_CMDQV nesting_parent_iova=0 length=1 size=48 trailing=1
            """);
        Assert.True(exit == 0, $"exit {exit}\n{output}\n{err}");
    }

    /// <summary>IOAS_CHANGE_PROCESS: an area mapped from user memory (not IOAS_MAP_FILE) cannot move (EINVAL).</summary>
    [Fact]
    public void Change_process_needs_file_mappings()
    {
        var (exit, output, err) = RunText("""
            buf  = MMAP length=0x200000
            ioas = IOAS_ALLOC
            IOAS_MAP ioas_id=$ioas user_va=$buf length=0x1000 iova=0x100000 flags=FIXED_IOVA|READABLE
            expect EINVAL: IOAS_CHANGE_PROCESS
            """);
        Assert.True(exit == 0, $"exit {exit}\n{output}\n{err}");
    }

    /// <summary>SMMUv3 commands are checked when the script is parsed: an unknown opcode or field is exit 2, nothing run.</summary>
    [Theory]
    [InlineData("cmds=TLBI_NH_FOO", "TLBI_NH_FOO")]
    [InlineData("cmds=TLBI_NH_VA/asid=x", "asid=x")]
    [InlineData("cmds=TLBI_NH_VA/colour=1", "colour")]
    [InlineData("cmds=RAW/1", "RAW")]
    [InlineData("cmds=CFGI_CD/sid=0x100000000", "sid=0x100000000")]
    [InlineData("cmds=TLBI_NH_ASID/asid=0x10000", "asid=0x10000")]
    public void Bad_commands_are_parse_errors(string arg, string named)
    {
        var (exit, output, err) = RunText($"HWPT_INVALIDATE hwpt_id=1 data_type=VIOMMU_ARM_SMMUV3 {arg}\n");
        Assert.Equal(2, exit);
        Assert.Contains(named, err, StringComparison.Ordinal);
        Assert.Equal("", output);
    }
}
