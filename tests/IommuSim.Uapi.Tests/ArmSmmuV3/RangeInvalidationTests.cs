using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.ArmSmmuV3;

/// <summary>
/// iommu.smmu.rangeInvalidation (SMMU_IDR3.RIL → ARM_SMMU_FEAT_RANGE_INV, arm_smmu_device_hw_probe) and the TLBIs
/// an unmap sends: __arm_smmu_tlb_inv_range (range commands with TG/SCALE/NUM/TTL, or one per granule) with
/// arm_smmu_inv_size_too_big's fallback to a whole-ASID/VMID invalidation; arm_smmu_hw_info reports IDR3.
/// </summary>
public sealed class RangeInvalidationTests
{
    private const ulong Iova = 0x4000_0000;

    /// <summary>Commands as "addr+offset/num/scale/tg/ttl" ("NH_ASID" / "S12_VMALL" for the whole-tag forms).</summary>
    private static string Show(IEnumerable<SmmuCommand> cmds) => string.Join(" ", cmds.Select(c => c.Opcode switch
    {
        SmmuOpcode.TlbiNhAsid => "NH_ASID",
        SmmuOpcode.TlbiS12Vmall => "S12_VMALL",
        _ => $"+0x{c.Address - Iova:x}/{c.Num}/{c.Scale}/{c.Tg}/{c.Ttl}",
    }));

    [Theory]
    // granule, size, RIL, leaf → the commands of __arm_smmu_tlb_inv_range (TG from the 4 KiB smallest page size).
    [InlineData(12, 0x1000UL, true, true, "+0x0/0/0/1/3")]              // one page: NUM 0, SCALE 0, TTL 3
    [InlineData(12, 0x2000UL, true, true, "+0x0/0/1/1/3")]              // 2 pages: SCALE 1 (the lowest set bit)
    [InlineData(12, 0x3000UL, true, true, "+0x0/2/0/1/3")]              // 3 pages: NUM + 1 = 3 blocks of 1
    [InlineData(12, 0x1F000UL, true, true, "+0x0/30/0/1/3")]            // 31 pages: the largest NUM
    [InlineData(12, 0x21000UL, true, true, "+0x0/0/0/1/3 +0x1000/0/5/1/3")] // 33 = 0b100001: two five-bit groups
    [InlineData(12, 0x40_0000UL, true, true, "+0x0/0/10/1/3")]          // 4 MiB: one command, SCALE 10
    [InlineData(21, 0x20_0000UL, true, true, "+0x0/0/9/1/2")]           // a 2 MiB block: TTL 2
    [InlineData(21, 0x60_0000UL, true, true, "+0x0/2/9/1/2")]           // three 2 MiB blocks
    [InlineData(30, 0x4000_0000UL, true, true, "+0x0/0/18/1/1")]        // a 1 GiB block: TTL 1
    [InlineData(12, 0x1000UL, true, false, "+0x0/0/1/1/0")]             // non-leaf: TTL 0 and a page added (never NUM = SCALE = 0)
    [InlineData(12, 0x3000UL, false, true, "+0x0/0/0/0/0 +0x1000/0/0/0/0 +0x2000/0/0/0/0")] // no RIL: one per page
    [InlineData(21, 0x40_0000UL, false, true, "+0x0/0/0/0/0 +0x200000/0/0/0/0")] // no RIL: one per 2 MiB block
    [InlineData(12, 0x1F_F000UL, false, true, null)]                    // 511 pages: still one per page (checked below)
    [InlineData(12, 0x20_0000UL, false, true, "NH_ASID")]               // 512 pages ≥ MAX_TLBI_OPS: the whole ASID
    public void Command_sequence_for_a_range(int granuleShift, ulong size, bool ril, bool leaf, string? expected)
    {
        var into = new List<SmmuCommand>();
        bool whole = ArmSmmuV3Driver.AddTlbiRange(into, new SmmuCommand { Opcode = SmmuOpcode.TlbiNhVa, Asid = 5, Leaf = leaf },
            Iova, size, granuleShift, tgShift: 12, ril);
        if (expected is null)
        {
            Assert.Equal((int)(size >> 12), into.Count);
            Assert.Equal(Iova + size - 0x1000, into[^1].Address);
            Assert.All(into, c => Assert.Equal((0, 0, 0, 0), (c.Num, c.Scale, c.Tg, c.Ttl)));
        }
        else Assert.Equal(expected, Show(into));
        Assert.Equal(expected is "NH_ASID" or "S12_VMALL", whole);
        Assert.All(into, c => Assert.Equal(5, c.Asid));
        // The ranges tile [Iova, Iova + size) exactly (with RIL; a leaf invalidation names no extra page).
        if (ril && leaf)
        {
            ulong at = Iova;
            foreach (var c in into) { Assert.Equal(at, c.Address); at += c.RangeBytes; }
            Assert.Equal(Iova + size, at);
        }
    }

    [Fact]
    public void A_stage2_range_too_big_without_ril_is_one_s12_vmall()
    {
        // arm_smmu_inv_size_too_big → nsize_opcode CMDQ_OP_TLBI_S12_VMALL for an S2 domain.
        var into = new List<SmmuCommand>();
        Assert.True(ArmSmmuV3Driver.AddTlbiRange(into, new SmmuCommand { Opcode = SmmuOpcode.TlbiS2Ipa, Vmid = 3, Leaf = true },
            Iova, 0x100_0000, 12, 12, ril: false));
        Assert.Equal("S12_VMALL", Show(into));
        Assert.Equal(3, into[0].Vmid);
    }

    private static Sim NewSim(bool ril) => new(new PlatformSpec { Devices = [DeviceSpec.Parse("0000:03:00.0", 3)] },
        new IommuOptions { Architecture = "smmuv3", Smmu = { RangeInvalidation = ril } });

    private static List<SmmuCommand> Sent(Sim s, Action act)
    {
        var q = s.Platform.Smmu!.CommandQueue;
        uint prod = q.Prod;
        act();
        var sent = new List<SmmuCommand>();
        for (uint i = prod; i != q.Prod; i = (i + 1) & ((q.Entries << 1) - 1))
        {
            ulong slot = q.Base + 16UL * (i & (q.Entries - 1));
            sent.Add(SmmuCommand.Decode(s.Platform.Memory.ReadU64(slot), s.Platform.Memory.ReadU64(slot + 8)));
        }
        Assert.Equal(q.Prod, q.Cons);
        return sent;
    }

    [Theory]
    // stage, leaves, RIL → what IOAS_UNMAP's iotlb_sync sends (arm_smmu_tlb_inv_range_domain), then CMD_SYNC.
    [InlineData(false, false, true, "TlbiNhVa/+0x0/2/0/1/3 CmdSync")]
    [InlineData(false, false, false, "TlbiNhVa/+0x0/0/0/0/0 TlbiNhVa/+0x1000/0/0/0/0 TlbiNhVa/+0x2000/0/0/0/0 CmdSync")]
    [InlineData(true, false, true, "TlbiS2Ipa/+0x0/2/0/1/3 TlbiNhAll/+0x0/0/0/0/0 CmdSync")] // nest parent: its nested ASIDs too
    [InlineData(false, true, true, "TlbiNhVa/+0x0/0/9/1/2 CmdSync")]  // one 2 MiB block (the gather's pgsize: TTL 2)
    [InlineData(false, true, false, "TlbiNhVa/+0x0/0/0/0/0 CmdSync")]
    public void Unmap_sends_range_or_per_granule_tlbis(bool nestParent, bool block, bool ril, string expected)
    {
        var s = NewSim(ril);
        var drv = Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);
        Assert.Equal(ril, drv.FeatRangeInv);
        var d = drv.AllocPagingDomain(nestParent, false);
        Assert.Equal(Errno.OK, drv.SetDevicePasid(s.Device(Sim.Dev3), 0, d, null));
        ulong bytes = block ? 0x20_0000UL : 0x3000UL;
        d.Map(Iova, 0x2_0000_0000, bytes, Access.ReadWrite, allowLargePages: block);
        Assert.False(s.Dma(Sim.Dev3, Iova + bytes - 0x1000).Faulted); // cache the translation
        var sent = Sent(s, () => Assert.Equal(bytes, d.Unmap(Iova, bytes)));
        Assert.Equal(expected, string.Join(" ", sent.Select(c => c.Opcode == SmmuOpcode.CmdSync ? "CmdSync"
            : $"{c.Opcode}/+0x{(c.Address == 0 ? 0 : c.Address - Iova):x}/{c.Num}/{c.Scale}/{c.Tg}/{c.Ttl}")));
        Assert.True(s.Dma(Sim.Dev3, Iova + bytes - 0x1000).Faulted); // nothing stale: the TLBIs covered the cached leaf
    }

    [Fact]
    public void A_large_unmap_without_ril_invalidates_the_whole_asid()
    {
        var s = NewSim(ril: false);
        var drv = Assert.IsType<ArmSmmuV3Driver>(s.Kernel.Driver);
        var d = drv.AllocPagingDomain(false, false);
        Assert.Equal(Errno.OK, drv.SetDevicePasid(s.Device(Sim.Dev3), 0, d, null));
        d.Map(Iova, 0x2_0000_0000, 0x20_0000, Access.ReadWrite, allowLargePages: false); // 512 pages of 4 KiB
        var sent = Sent(s, () => d.Unmap(Iova, 0x20_0000));
        Assert.Equal([SmmuOpcode.TlbiNhAsid, SmmuOpcode.CmdSync], sent.Select(c => c.Opcode));
        Assert.Equal(d.Asid, sent[0].Asid);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Get_hw_info_reports_idr3_ril_as_configured(bool ril)
    {
        // arm_smmu_hw_info: idr[3] = readl_relaxed(SMMU_IDR3); IDR3_RIL is bit 10.
        var s = NewSim(ril);
        var idev = s.Bind(Sim.Dev3);
        var c = new IommuHwInfo { dev_id = idev.Id, data_len = IommuHwInfoArmSmmuv3.Size, data = new byte[IommuHwInfoArmSmmuv3.Size] };
        Assert.Equal(Errno.OK, s.Ctx.GetHwInfo(c));
        Assert.Equal(IommuHwInfoType.ARM_SMMUV3, c.out_data_type);
        uint idr3 = BitConverter.ToUInt32(c.data!, 8 + 4 * 3);
        Assert.Equal(ril ? 1u << 10 : 0u, idr3);
    }

    private sealed class Client : IommuSim.Hardware.Devices.IDmaApiClient
    {
        public ulong Iova;
        public bool Done;
        public void OnMapped(long tag, ulong iova) { Iova = iova; Done = true; }
        public void OnUnmapped(long tag) => Done = true;
    }

    /// <summary>
    /// The nested guest's unmap (its arm_smmu_tlb_inv_range_domain) uses range TLBI_NH_VA only when the vIOMMU's IDR3
    /// has RIL; the trapped commands reach the host queue through arm_vsmmu_cache_invalidate, which passes
    /// NUM/SCALE/TG/TTL through (arm_vsmmu_convert_user_cmd rewrites the VMID only), and the page faults afterwards.
    /// </summary>
    [Theory]
    [InlineData(true, "TlbiNhVa/2/0/1/3 CmdSync")]
    [InlineData(false, "TlbiNhVa/0/0/0/0 TlbiNhVa/0/0/0/0 TlbiNhVa/0/0/0/0 CmdSync")]
    public void A_nested_guest_uses_range_tlbis_only_when_the_viommu_reports_ril(bool ril, string expected)
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec(), new IommuOptions { Architecture = "smmuv3", Smmu = { RangeInvalidation = ril } });
        var sys = SystemProvisioner.Provision(hw, new ProvisionRequest("nested", new StageSpec(), new StageSpec(), [new VmSpec("vm0", 256UL << 20)],
            [new DeviceProvision(Sim.Dev3, "iommufd", [], "vm0")]));
        var dev = hw.Device(Sim.Dev3)!;
        var pd = sys.Devices[Sim.Dev3];
        var target = IommuSim.Uapi.Designs.TranslationDesigns.Nested.MappingTarget(hw, dev, pd,
            new IommuSim.Uapi.Designs.RunTimeCosts(0, 0, IommuSim.Uapi.Driver.InvalidationHint.Never));
        var api = new IommuSim.Uapi.DmaApi.KernelDmaApi(sys.Kernel.Port, IommuSim.Uapi.DmaApi.DmaApiCosts.FromNs("strict", 200, 150, 100, 1500, 400, 4, 50));
        api.Register(dev, target);
        var c = new Client();
        c.Done = false; api.Map(dev, 0x3000, Access.ReadWrite, c, 1); hw.RunUntil(() => c.Done);
        ulong iova = c.Iova;
        Assert.False(hw.ExecuteDma(dev.RequesterId, null, iova + 0x2000, 64, Access.Read).Faulted);
        var q = hw.Smmu!.CommandQueue;
        uint prod = q.Prod;
        c.Done = false; api.Unmap(dev, iova, 0x3000, c, 1); hw.RunUntil(() => c.Done);
        var sent = new List<SmmuCommand>();
        for (uint i = prod; i != q.Prod; i = (i + 1) & ((q.Entries << 1) - 1))
        {
            ulong slot = q.Base + 16UL * (i & (q.Entries - 1));
            sent.Add(SmmuCommand.Decode(hw.Memory.ReadU64(slot), hw.Memory.ReadU64(slot + 8)));
        }
        Assert.Equal(expected, string.Join(" ", sent.Select(x => x.Opcode == SmmuOpcode.CmdSync ? "CmdSync" : $"{x.Opcode}/{x.Num}/{x.Scale}/{x.Tg}/{x.Ttl}")));
        Assert.All(sent.Where(x => x.Opcode == SmmuOpcode.TlbiNhVa), x => Assert.NotEqual(0, x.Vmid)); // the vIOMMU's VMID, forced
        Assert.True(hw.ExecuteDma(dev.RequesterId, null, iova + 0x2000, 64, Access.Read).Faulted);
    }

    /// <summary>The script names the range fields as arm-smmu-v3.h does (CMDQ_TLBI_0_NUM/SCALE, CMDQ_TLBI_1_TG/TTL);
    /// a value wider than its field is a parse error, never a truncation.</summary>
    [Theory]
    [InlineData("TLBI_NH_VA/asid=1/addr=0x100000/leaf/tg=1/scale=4/num=2/ttl=3", true)]
    [InlineData("TLBI_S2_IPA/addr=0x200000/tg=3/scale=31/num=31/ttl=1", true)]
    [InlineData("TLBI_NH_VA/asid=1/addr=0/num=32", false)]
    [InlineData("TLBI_NH_VA/asid=1/addr=0/tg=4", false)]
    [InlineData("TLBI_NH_VA/asid=1/addr=0/ttl=4", false)]
    [InlineData("TLBI_NH_VA/asid=1/addr=0/scale=32", false)]
    public void Script_range_fields_encode_at_the_kernels_positions(string text, bool ok)
    {
        Assert.Equal(ok, IommuSim.Uapi.Script.SmmuCmds.TryParse(text, out var cmds, out string? error));
        if (!ok) { Assert.NotNull(error); return; }
        var (c0, c1) = Assert.Single(cmds);
        var c = SmmuCommand.Decode(c0, c1);
        var fields = text.Split('/').Skip(1).Where(f => f.Contains('=')).ToDictionary(f => f[..f.IndexOf('=')], f => Convert.ToUInt64(f[(f.IndexOf('=') + 1)..], f.Contains("0x") ? 16 : 10));
        Assert.Equal(fields["num"], (c0 >> 12) & 31);
        Assert.Equal(fields["scale"], (c0 >> 20) & 31);
        Assert.Equal(fields["ttl"], (c1 >> 8) & 3);
        Assert.Equal(fields["tg"], (c1 >> 10) & 3);
        Assert.Equal(fields["addr"], c.Address);
    }
}
