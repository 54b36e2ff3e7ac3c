using System.Security.Cryptography;
using System.Text;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.Designs;

/// <summary>
/// Provisioning through the design objects builds exactly the tables the pre-refactoring
/// SystemProvisioner built: a fingerprint of every device's PASID-table entry, table, ids,
/// regions, every 4 KiB translation of its regions, a DMA through the hardware, and the frame
/// allocator's state afterwards. The expected hashes were recorded with the switch-based
/// SystemProvisioner (commit c1f9948) before the code moved.
/// </summary>
public class DesignProvisioningTests
{
    private static readonly DmaRegion[] Regions = [new(0x1_0000_0000, 0x40_0000), new(0x2_0000_0000, 0x3000)];

    public static TheoryData<string, string, int, string, int, string, int, string> Cases() => new()
    {
        // design, via, pasid (-1 none), stage1 leaf, stage1 levels, stage2 leaf, stage2 levels, expected fingerprint
        { "off", "kernel", -1, "4K", 4, "4K", 4, "F73C68AEDA16947C" },
        { "passthrough", "kernel", -1, "4K", 4, "4K", 4, "D997D7CEDC2A82B3" },
        { "single-stage", "kernel", -1, "4K", 4, "4K", 4, "5B1ECD4493DBAAD8" },
        { "single-stage", "kernel", -1, "4K", 4, "1G", 5, "531F837DC027CE61" },
        { "single-stage", "iommufd", -1, "4K", 4, "4K", 4, "803DE88CDC8441AE" },
        { "single-stage", "iommufd", -1, "4K", 4, "2M", 3, "382CFE9439C1D18B" },
        { "single-stage", "iommufd", 7, "4K", 4, "4K", 4, "0342C3F63E00CA65" },
        { "single-stage", "vfio-container", -1, "4K", 4, "4K", 4, "942E4A3110450F1E" },
        { "single-stage", "vfio-container", -1, "4K", 4, "2M", 4, "3F3B9323D0B409C5" },
        { "nested", "iommufd", -1, "4K", 4, "4K", 4, "42113B21D16D8D51" },
        { "nested", "iommufd", -1, "2M", 5, "2M", 4, "1E5CD9AD1A32F7A6" },
        { "nested", "iommufd", 9, "4K", 4, "4K", 4, "66427BBE6030D93A" },
        { "shadow", "iommufd", -1, "4K", 4, "4K", 4, "85BC494D2B78BDE2" },
        { "shadow", "iommufd", -1, "2M", 4, "2M", 4, "D323C309D00A9BD8" },
        { "shadow", "iommufd", 9, "4K", 4, "4K", 4, "95E5E902232A2C6A" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryDesign_ProvisionsTheSameTablesAsBefore(string design, string via, int pasid, string s1Leaf, int s1Levels,
        string s2Leaf, int s2Levels, string expected)
    {
        string fp = Fingerprint(design, via, pasid < 0 ? null : (uint)pasid, new StageSpec(s1Levels, Leaf(s1Leaf)), new StageSpec(s2Levels, Leaf(s2Leaf)));
        Assert.Equal(expected, fp);
    }

    private static PageSize Leaf(string s) => PageSizes.TryParse(s, out var p) ? p : throw new ArgumentException(s);

    internal static string Fingerprint(string design, string via, uint? pasid, StageSpec s1, StageSpec s2)
    {
        var hw = PlatformPort.CreatePlatform(new PlatformSpec(), new IommuOptions());
        var req = new ProvisionRequest(design, s1, s2, [new VmSpec("vm0", 256UL << 20), new VmSpec("vm1", 128UL << 20)],
            [new DeviceProvision(Sim.Dev3, via, Regions, "vm0", pasid), new DeviceProvision(Sim.Dev4, via, Regions, "vm1")]);
        var sys = SystemProvisioner.Provision(hw, req);
        var sb = new StringBuilder();
        foreach (var (rid, pd) in sys.Devices.OrderBy(kv => kv.Key.Value))
        {
            sb.Append($"{rid} pasid={pd.Pasid} ioas={pd.IoasId} hwpt={pd.HwptId} did={pd.DomainId} kdom={pd.KernelDomain?.DomainId} ");
            sb.Append($"table={pd.Table?.RootAddress:x}/{pd.Table?.Levels}/{pd.Table?.Stage}/{pd.Table?.TablePages}/{pd.Table?.MappedBytes} ");
            sb.Append($"guest={pd.GuestPgtbl:x} vm={pd.Vm?.MemoryBytes}\n");
            sb.Append(hw.Iommu.Tables.ReadPasidEntry(rid, pd.Pasid ?? 0).ToString()).Append('\n');
            foreach (var r in pd.Regions)
            {
                sb.Append($"  region {r.Iova:x}+{r.Bytes:x} -> {r.HostPhysical:x}\n");
                if (pd.Table is { } t)
                    for (ulong iova = r.Iova; iova < r.Iova + r.Bytes; iova += 0x1000)
                        sb.Append(t.TryTranslate(iova, out ulong pa, out var acc, out var size) ? $"{pa:x}{acc}{size}," : "-,");
                var dma = hw.ExecuteDma(rid, pd.Pasid, r.Iova + r.Bytes - 64, 64, Access.Write);
                sb.Append($"\n  dma {dma.Faulted} {dma.Reason} {dma.PhysicalAddress:x} {dma.WalkReads}\n");
            }
        }
        sb.Append($"vms={string.Join(",", sys.Vms.Keys)} resident={hw.Memory.ResidentFrames} tables={hw.Frames.TableFramesInUse} next={hw.Frames.AllocateFrame():x}");
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16];
    }
}
