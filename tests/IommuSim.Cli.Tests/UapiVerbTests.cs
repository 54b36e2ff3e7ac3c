namespace IommuSim.Cli.Tests;

public class UapiVerbTests
{
    public static TheoryData<string> ShippedScripts()
    {
        var d = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(CliHarness.RepoRoot, "configs", "uapi"), "*.uapi")) d.Add(Path.GetFileName(f));
        return d;
    }

    [Theory]
    [MemberData(nameof(ShippedScripts))]
    public void Shipped_scripts_hold_every_expectation(string name)
    {
        using var h = new CliHarness();
        var (code, o, err) = h.Run("uapi", Path.Combine(CliHarness.RepoRoot, "configs", "uapi", name));
        Assert.True(code == 0, o + err);
        Assert.DoesNotContain("MISMATCH", o);
    }

    [Fact]
    public void A_failed_expect_exits_3_and_a_malformed_line_exits_2()
    {
        using var h = new CliHarness();
        string bad = h.Write("bad.uapi", "ioas = IOAS_ALLOC\nexpect EEXIST: IOAS_ALLOC\n");
        var (code, o, _) = h.Run("uapi", bad);
        Assert.Equal(3, code);
        Assert.Contains("MISMATCH", o);
        string broken = h.Write("broken.uapi", "ioas = IOAS_ALLOC\nIOAS_MAP ioas_id=$nope length=\n");
        var (code2, _, err2) = h.Run("uapi", broken);
        Assert.Equal(2, code2);
        Assert.Contains("broken.uapi:2", err2);
    }

    /// <summary>`config FILE` builds the platform of that simulation config (its devices): a device it lacks is ENODEV.</summary>
    [Fact]
    public void Config_statement_builds_the_platform_of_the_config()
    {
        using var h = new CliHarness();
        string cfg = Path.Combine(CliHarness.RepoRoot, "configs", "quickstart.json");
        string script = h.Write("c.uapi", $"config {cfg}\ndev = DEVICE_BIND_IOMMUFD device=0000:03:00.0\nexpect ENODEV: DEVICE_BIND_IOMMUFD device=0000:04:00.0\n");
        var (code, o, err) = h.Run("uapi", script);
        Assert.True(code == 0, o + err);
    }

    [Fact]
    public void Config_statement_with_a_bad_config_exits_2_naming_the_key()
    {
        using var h = new CliHarness();
        h.Write("bad.json", "{ \"iommu\": { \"iotlb\": { \"ways\": 0 } } }");
        string script = h.Write("s.uapi", "config bad.json\nIOAS_ALLOC\n");
        var (code, o, err) = h.Run("uapi", script);
        Assert.Equal(2, code);
        Assert.Equal("", o);
        Assert.Contains("iommu:iotlb:ways", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Uapi_verb_of_UapiScriptCommand_runs_a_script()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var root = new System.CommandLine.RootCommand { IommuSim.Cli.UapiScript.UapiScriptCommand.CreateCommand(o, e) };
        string path = Path.Combine(CliHarness.RepoRoot, "configs", "uapi", "dpdk-map-per-buffer.uapi");
        int rc = root.Parse(["uapi", path]).Invoke(new System.CommandLine.InvocationConfiguration { Output = o, Error = e });
        Assert.True(rc == 0, o.ToString() + e.ToString());
        Assert.Contains("IOAS_UNMAP -> OK length=0x1000", o.ToString(), StringComparison.Ordinal);
    }
}

public class UapiStructSizeTests
{
    [Theory]
    [InlineData("expect EINVAL: IOAS_ALLOC size=8")]                 // below offsetofend(out_ioas_id)
    [InlineData("expect OK: IOAS_ALLOC size=16")]                    // larger, zero tail: accepted
    [InlineData("expect E2BIG: IOAS_ALLOC size=16 trailing=1")]      // larger with unknown non-zero bytes
    [InlineData("expect EINVAL: IOAS_MAP ioas_id=$ioas user_va=$buf length=0x1000 size=32")]
    [InlineData("expect OK: IOAS_MAP ioas_id=$ioas user_va=$buf length=0x1000 iova=0x100000 flags=FIXED_IOVA|READABLE size=40")]
    [InlineData("expect EINVAL: DESTROY id=$ioas size=4")]
    [InlineData("expect ENOTTY: IOCTL nr=0xfe")]                     // not an iommufd command
    [InlineData("expect EINVAL: IOCTL nr=0x85")]                     // IOAS_MAP with no struct
    public void Ioctl_dispatch_checks_struct_size_and_command(string line)
    {
        using var h = new CliHarness();
        string script = h.Write("s.uapi", "buf = MMAP length=0x200000\nioas = IOAS_ALLOC\n" + line + "\n");
        var (code, o, err) = h.Run("uapi", script);
        Assert.True(code == 0, o + err);
    }
}

public class UapiAccessTests
{
    /// <summary>iopt_unmap_iova_range: pages an access pinned do not make IOAS_UNMAP busy; iommufd_access_notify_unmap
    /// has the access unpin them (the selftest's mock access, iommufd_test_access_unmap) and the unmap completes.</summary>
    [Fact]
    public void Unmap_of_pages_an_in_kernel_access_pinned_notifies_the_access_and_unmaps()
    {
        using var h = new CliHarness();
        string script = h.Write("a.uapi", """
            buf = MMAP length=0x200000
            ioas = IOAS_ALLOC
            IOAS_MAP ioas_id=$ioas user_va=$buf length=0x4000 iova=0x100000 flags=FIXED_IOVA|READABLE|WRITEABLE
            acc = ACCESS_CREATE ioas_id=$ioas
            expect ENOENT: ACCESS_PIN access_id=$acc iova=0x200000 length=0x1000
            expect OK: ACCESS_PIN access_id=$acc iova=0x101000 length=0x1000
            expect OK length=0x4000: IOAS_UNMAP ioas_id=$ioas iova=0x100000 length=0x4000
            expect EINVAL: ACCESS_UNPIN access_id=$acc iova=0x101000 length=0x1000
            expect EBUSY: DESTROY id=$ioas
            IOAS_MAP ioas_id=$ioas user_va=$buf length=0x4000 iova=0x100000 flags=FIXED_IOVA|READABLE|WRITEABLE
            expect OK: ACCESS_PIN access_id=$acc iova=0x100000 length=0x4000
            expect OK length=0x4000: IOAS_UNMAP ioas_id=$ioas iova=0 length=0xffffffffffffffff
            expect OK: DESTROY id=$acc
            expect OK: DESTROY id=$ioas
            """);
        var (code, o, err) = h.Run("uapi", script);
        Assert.True(code == 0, o + err);
    }
}
