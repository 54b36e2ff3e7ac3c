using IommuSim.Uapi.Script;

namespace IommuSim.Uapi.Tests;

public class ScriptTests
{
    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "IommuSim.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }

    private static (int Exit, string Out, string Err) Run(string path)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = ScriptRunner.Run(path, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    private static (int Exit, string Out, string Err) RunText(string text, Hardware.PlatformSpec? platform = null)
    {
        string path = Path.Combine(Path.GetTempPath(), $"uapi-{Guid.NewGuid():N}.uapi");
        File.WriteAllText(path, text);
        try
        {
            var o = new StringWriter();
            var e = new StringWriter();
            int rc = ScriptRunner.Run(path, o, e, platform);
            return (rc, o.ToString(), e.ToString());
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData("vmm-nested.uapi")]
    [InlineData("legacy-vfio.uapi")]
    [InlineData("dpdk-map-per-buffer.uapi")]
    [InlineData("kernel-conformance.uapi")]
    public void ShippedExamples_RunWithEveryExpectationHolding(string name)
    {
        var (exit, output, err) = Run(Path.Combine(RepoRoot(), "configs", "uapi", name));
        Assert.True(exit == 0, $"exit {exit}\n{output}\n{err}");
        Assert.DoesNotContain("MISMATCH", output, StringComparison.Ordinal);
    }

    [Fact]
    public void SpecExample_Runs()
    {
        const string script = """
            # comment
            buf  = MMAP length=0x200000
            ioas = IOAS_ALLOC
            IOAS_MAP ioas_id=$ioas user_va=$buf length=0x4000 iova=0x100000 flags=FIXED_IOVA|READABLE|WRITEABLE
            expect EEXIST: IOAS_MAP ioas_id=$ioas user_va=$buf length=0x1000 iova=0x102000 flags=FIXED_IOVA|READABLE
            dev  = DEVICE_BIND_IOMMUFD device=0000:03:00.0
            DEVICE_ATTACH_IOMMUFD_PT dev_id=$dev pt_id=$ioas
            DMA device=0000:03:00.0 iova=0x100040 bytes=64 op=W
            expect OK length=0x4000: IOAS_UNMAP ioas_id=$ioas iova=0x100000 length=0x4000
            expect FAULT: DMA device=0000:03:00.0 iova=0x100040 bytes=64 op=W
            """;
        var (exit, output, err) = RunText(script);
        Assert.True(exit == 0, output + err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(9, lines.Length);
        Assert.StartsWith("3: IOAS_ALLOC -> OK out_ioas_id=1", lines[1], StringComparison.Ordinal);
        Assert.StartsWith("5: IOAS_MAP -> EEXIST", lines[3], StringComparison.Ordinal);
        Assert.StartsWith("10: DMA -> FAULT reason=secondStageNotPresent", lines[8], StringComparison.Ordinal);
    }

    [Fact]
    public void FailedExpectation_PrintsMismatch_AndExitsThree()
    {
        var (exit, output, _) = RunText("ioas = IOAS_ALLOC\nexpect OK: IOAS_UNMAP ioas_id=$ioas iova=0x1000 length=0x1000\nIOAS_ALLOC\n");
        Assert.Equal(3, exit);
        Assert.Contains("2: IOAS_UNMAP -> ENOENT   MISMATCH", output, StringComparison.Ordinal);
        Assert.Contains("3: IOAS_ALLOC -> OK out_ioas_id=2", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("IOAS_ALLOC\nFROB x=1\n", ":2: unknown call 'FROB'")]
    [InlineData("IOAS_MAP ioas_id=$nope user_va=0 length=1\n", ":1: $nope is used before it is bound")]
    [InlineData("IOAS_ALLOC\nconfig x.json\n", ":2: `config` must be the first statement")]
    [InlineData("ioas = IOAS_ALLOC\nIOAS_MAP ioas_id=$ioas user_va=0 length=0x1000 flags=BOGUS\n", ":2: flags=BOGUS: unknown name")]
    [InlineData("expect MAYBE: IOAS_ALLOC\n", ":1: unknown result 'MAYBE'")]
    [InlineData("IOAS_UNMAP ioas_id=1 iova=0\n", ":1: IOAS_UNMAP needs length=")]
    [InlineData("DMA device=zz iova=0\n", ":1: device=zz: not a PCI address")]
    [InlineData("IOAS_ALLOC colour=red\n", ":1: IOAS_ALLOC has no argument 'colour'")]
    public void MalformedScript_ExitsTwo_NamesTheLine_AndRunsNothing(string script, string message)
    {
        var (exit, output, err) = RunText(script);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains(message, err, StringComparison.Ordinal);
    }

    /// <summary>A `config` statement needs the CLI's config loader (tested in IommuSim.Cli.Tests/UapiVerbTests); the library alone refuses it as bad input.</summary>
    [Fact]
    public void ConfigStatement_WithoutALoader_ExitsTwo()
    {
        var (exit, output, err) = RunText("config quickstart.json\nIOAS_ALLOC\n");
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains("needs a config loader", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Variables_InExpectedFields_AndBindings_Resolve()
    {
        var (exit, output, err) = RunText("a = IOAS_ALLOC\nb = IOAS_ALLOC\nexpect OK ioas_id=$b: VFIO_IOAS op=SET ioas_id=$b\nexpect OK ioas_id=$b: VFIO_IOAS op=GET\nexpect OK ioas_id=$a: VFIO_IOAS op=GET\n");
        Assert.Equal(3, exit);
        Assert.Contains("5: VFIO_IOAS -> OK ioas_id=2   MISMATCH: expected ioas_id=$a", output, StringComparison.Ordinal);
        Assert.Equal("", err);
    }

    [Fact]
    public void ProbeInvalidate_AndErrnoOutputFields()
    {
        const string script = """
            vm = VM_CREATE memory=0x1000000
            ioas = IOAS_ALLOC
            IOAS_MAP ioas_id=$ioas user_va=$vm iova=0 length=0x1000000 flags=FIXED_IOVA|READABLE|WRITEABLE
            dev = DEVICE_BIND_IOMMUFD device=0000:03:00.0
            s2 = HWPT_ALLOC dev_id=$dev pt_id=$ioas flags=NEST_PARENT
            pt = GUEST_PGTABLE_ALLOC vm=$vm levels=4
            s1 = HWPT_ALLOC dev_id=$dev pt_id=$s2 data_type=VTD_S1 pgtbl_addr=$pt addr_width=48
            expect OK entry_num=0: HWPT_INVALIDATE hwpt_id=$s1 data_type=VTD_S1 entries=
            expect EINVAL entry_num=1: HWPT_INVALIDATE hwpt_id=$s1 data_type=VTD_S1 entries=0x1000/1,0x1001/1
            expect EOPNOTSUPP entry_num=0: HWPT_INVALIDATE hwpt_id=$s1 data_type=VTD_S1 entries=0x1000/1/2
            expect EMSGSIZE num_iovas=1: IOAS_IOVA_RANGES ioas_id=$ioas num_iovas=0
            GUEST_MAP pgtable=$pt vm=$vm iova=0 gpa=0 length=0x1000 flags=READABLE
            expect EEXIST: GUEST_MAP pgtable=$pt vm=$vm iova=0 gpa=0 length=0x1000 flags=READABLE
            """;
        var (exit, output, err) = RunText(script);
        Assert.True(exit == 0, output + err);
    }

    [Fact]
    public void ImpossibleRequests_AreErrnos_NotCrashes()
    {
        var (exit, output, err) = RunText("expect ENOMEM: MMAP length=0x100000000000000\nexpect ENOMEM: VM_CREATE memory=0x100000000000000\nexpect EINVAL: ADVANCE ns=0xffffffffffffffff\nexpect OK: ADVANCE ns=1000\n");
        Assert.True(exit == 0, output + err);
    }

    [Fact]
    public void PageFault_ThroughTheUserFaultQueue_EndToEnd()
    {
        const string script = """
            fault = FAULT_QUEUE_ALLOC
            ioas  = IOAS_ALLOC
            dev   = DEVICE_BIND_IOMMUFD device=0000:03:00.0
            hwpt  = HWPT_ALLOC dev_id=$dev pt_id=$ioas flags=FAULT_ID_VALID fault_id=$fault
            DEVICE_ATTACH_IOMMUFD_PT dev_id=$dev pt_id=$hwpt
            expect FAULT reason=pageRequestQueued: DMA device=0000:03:00.0 iova=0x40000000 bytes=64 op=W
            expect OK count=1 addr=0x40000000: cookie = FAULT_READ fault_id=$fault
            buf   = MMAP length=0x1000
            IOAS_MAP ioas_id=$ioas user_va=$buf length=0x1000 iova=0x40000000 flags=FIXED_IOVA|READABLE|WRITEABLE
            expect EINVAL: FAULT_RESPOND fault_id=$fault cookie=999 code=SUCCESS
            FAULT_RESPOND fault_id=$fault cookie=$cookie code=SUCCESS
            ADVANCE ns=100000
            expect OK: DMA device=0000:03:00.0 iova=0x40000000 bytes=64 op=W
            """;
        var pri = new Hardware.PlatformSpec { Devices = [new Hardware.DeviceSpec(Sim.Dev3, 3, Ats: true, PageRequests: true)] };
        var (exit, output, err) = RunText(script, pri);
        Assert.True(exit == 0, output + err);
    }
}
