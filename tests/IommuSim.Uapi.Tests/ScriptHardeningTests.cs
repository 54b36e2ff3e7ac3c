using IommuSim.Uapi.Script;

namespace IommuSim.Uapi.Tests;

/// <summary>
/// `iommusim uapi` on hostile scripts: values wider than their uAPI field are parse errors naming FILE:LINE, the
/// field and its width (exit 2, nothing run); sizes near 2^64 give the kernel's errno; nothing throws.
/// </summary>
public class ScriptHardeningTests
{
    private static (int Exit, string Out, string Err, string Path) RunText(string text)
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"uapi-{Guid.NewGuid():N}.uapi");
        File.WriteAllText(path, text);
        try
        {
            var o = new StringWriter();
            var e = new StringWriter();
            int rc = ScriptRunner.Run(path, o, e);
            return (rc, o.ToString(), e.ToString(), path);
        }
        finally { File.Delete(path); }
    }

    /// <summary>An object id of 2^32 + 1 would reach the kernel as 1 (struct iommu_destroy.id is __u32): refused.</summary>
    [Theory]
    [InlineData("DESTROY id=0x100000001", "id=0x100000001", "u32")]
    [InlineData("IOAS_ALLOC flags=0x100000000", "flags=0x100000000", "u32")]
    [InlineData("IOAS_MAP ioas_id=1 user_va=0 length=0x1000 flags=READABLE|0x100000000", "flags=", "u32")]
    [InlineData("OPTION option_id=HUGE_PAGES op=0x10000 object_id=1", "op=0x10000", "u16")]
    [InlineData("IOAS_IOVA_RANGES ioas_id=1 num_iovas=0x100000000", "num_iovas=", "u32")]
    [InlineData("GET_HW_INFO dev_id=1 data_len=0xffffffffffffffff", "data_len=", "u32")]
    [InlineData("IOAS_MAP_FILE ioas_id=1 fd=0x80000000 length=0x1000 flags=READABLE", "fd=0x80000000", "s32")]
    [InlineData("IOAS_ALLOC size=0x100000000", "size=", "u32")]
    [InlineData("IOCTL nr=0x185", "nr=0x185", "u8")]
    public void ValueWiderThanItsField_IsAParseError(string line, string names, string width)
    {
        var (exit, output, err, path) = RunText("ioas = IOAS_ALLOC\n" + line + "\n");
        Assert.Equal(ScriptRunner.BadInput, exit);
        Assert.Equal("", output); // nothing ran
        Assert.StartsWith($"{path}:2: ", err, StringComparison.Ordinal);
        Assert.Contains(names, err, StringComparison.Ordinal);
        Assert.Contains($"wider than its uAPI field ({width}", err, StringComparison.Ordinal);
    }

    /// <summary>A variable holding a 64-bit value passed as a u32 id is refused at that line (exit 2), not truncated.</summary>
    [Fact]
    public void VariableWiderThanItsField_StopsTheScriptWithExit2()
    {
        var (exit, output, err, path) = RunText("buf = MMAP length=0x200000\nDESTROY id=$buf\nIOAS_ALLOC\n");
        Assert.Equal(ScriptRunner.BadInput, exit);
        Assert.StartsWith($"{path}:2: id=$buf", err, StringComparison.Ordinal);
        Assert.Contains("u32", err, StringComparison.Ordinal);
        Assert.DoesNotContain("IOAS_ALLOC", output, StringComparison.Ordinal);
    }

    [Fact]
    public void LargestValuesThatFit_AreAccepted()
    {
        var (exit, output, err, _) = RunText("""
            expect ENOENT: DESTROY id=0xffffffff
            expect EOPNOTSUPP: IOAS_ALLOC flags=0xffffffff
            expect EOPNOTSUPP: OPTION option_id=RLIMIT_MODE op=0xffff object_id=0
            """);
        Assert.True(exit == 0, output + err);
    }

    /// <summary>Sizes near 2^64 through the script: the kernel's errno, never an exception (exit 0 with expects).</summary>
    [Fact]
    public void SizesNear2Pow64_GiveTheKernelsErrno()
    {
        var (exit, output, err, _) = RunText("""
            expect ENOMEM: MMAP length=0xffffffffffffffff
            expect ENOMEM: MMAP length=0xffffffffffe00001
            expect EINVAL: MEMFD_CREATE size=0xffffffffffffffff
            expect ENOMEM: VM_CREATE memory=0xfffffffffffff000
            buf = MMAP length=0x200000
            ioas = IOAS_ALLOC
            dev = DEVICE_BIND_IOMMUFD device=0000:03:00.0
            DEVICE_ATTACH_IOMMUFD_PT dev_id=$dev pt_id=$ioas
            expect EOVERFLOW: IOAS_MAP ioas_id=$ioas user_va=$buf length=0xfffffffffffff000 iova=0x100000 flags=FIXED_IOVA|READABLE
            expect EINVAL: IOAS_MAP ioas_id=$ioas user_va=0 length=0xfffffffffffff001 flags=READABLE
            expect EFAULT: IOAS_MAP ioas_id=$ioas user_va=$buf length=0x10000000000 iova=0x100000000 flags=FIXED_IOVA|READABLE
            expect OK num_iovas=2: IOAS_IOVA_RANGES ioas_id=$ioas num_iovas=0xffffffff
            expect OK data_len=24: GET_HW_INFO dev_id=$dev data_len=0xffffffff
            acc = ACCESS_CREATE ioas_id=$ioas
            IOAS_MAP ioas_id=$ioas user_va=$buf length=0x200000 iova=0x200000 flags=FIXED_IOVA|READABLE
            expect EOVERFLOW: ACCESS_PIN access_id=$acc iova=0x200000 length=0xfffffffffffff000
            expect ENOENT: ACCESS_PIN access_id=$acc iova=0x200000 length=0x7ffffffffffff000
            """);
        Assert.True(exit == 0, output + err);
    }

    /// <summary>Guest page tables that fill the VM's RAM: the guest allocator's ENOMEM, not an exception.</summary>
    [Fact]
    public void GuestPageTablesExhaustingGuestRam_AreENOMEM()
    {
        var (exit, output, err, _) = RunText("""
            vm = VM_CREATE memory=0x4000
            pt = GUEST_PGTABLE_ALLOC vm=$vm levels=4
            expect ENOMEM: GUEST_MAP pgtable=$pt vm=$vm iova=0x40000000000 gpa=0 length=0x1000 flags=READABLE
            """);
        Assert.True(exit == 0, output + err);
    }

    /// <summary>HWPT_GET_DIRTY_BITMAP over 2^48 bytes answers at once (iopt_read_and_clear_dirty_data walks areas) and
    /// prints only the non-zero words of its 2^30-word bitmap.</summary>
    [Fact]
    public void DirtyBitmapOver2Pow48_AnswersWithTheNonZeroWords()
    {
        var (exit, output, err, _) = RunText("""
            buf = MMAP length=0x200000
            ioas = IOAS_ALLOC
            IOAS_MAP ioas_id=$ioas user_va=$buf length=0x10000 iova=0x100000 flags=FIXED_IOVA|READABLE|WRITEABLE
            dev = DEVICE_BIND_IOMMUFD device=0000:03:00.0
            h = HWPT_ALLOC dev_id=$dev pt_id=$ioas flags=DIRTY_TRACKING
            DEVICE_ATTACH_IOMMUFD_PT dev_id=$dev pt_id=$h
            HWPT_SET_DIRTY_TRACKING hwpt_id=$h flags=ENABLE
            DMA device=0000:03:00.0 iova=0x102000 bytes=64 op=W
            expect OK dirty=1 words=0x40000000 nonzero=4/0x4: HWPT_GET_DIRTY_BITMAP hwpt_id=$h iova=0 length=0x1000000000000 page_size=0x1000
            """);
        Assert.True(exit == 0, output + err);
    }
}
