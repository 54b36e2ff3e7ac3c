using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Tests;

/// <summary>Builds a platform with one device and tables written directly (as a driver would).</summary>
internal sealed class TestPlatform
{
    public const string Bdf = "0000:03:00.0";
    public Platform Platform { get; }
    public RequesterId Rid { get; } = new(3, 0, 0);
    public PageTable? Stage1 { get; private set; }
    public PageTable? Stage2 { get; private set; }
    public ushort Did { get; } = 1;

    public TestPlatform(bool walkCaches = false, Action<IommuOptions>? tweak = null, bool iommuOnPath = true,
        Action<DeviceOptions>? device = null, Action<PcieOptions>? pcie = null)
    {
        var io = new IommuOptions();
        io.WalkCaches.Enabled = walkCaches;
        tweak?.Invoke(io);
        var po = new PcieOptions();
        pcie?.Invoke(po);
        var d = new DeviceOptions { Name = "dev0", Bdf = Bdf, MaxOutstanding = 8 };
        device?.Invoke(d);
        Platform = new Platform(new MemoryOptions(), po, io, iommuOnPath, 1);
        Platform.AddDevice(d);
    }

    public Devices.DmaEngine Device => Platform.Devices[0];

    public HostTableMemory HostTables => new(Platform.Memory, Platform.Frames);

    /// <summary>Single-stage (second-stage table) mapping iova → pa.</summary>
    public void SetupSecondStage(int levels, ulong iova, ulong pa, ulong length, PageSize page = PageSize.Size4K, Access access = Access.ReadWrite, bool dirty = false)
    {
        Stage2 = new PageTable(HostTables, TableStage.Second, levels);
        Stage2.Map(iova, pa, length, access, page);
        Platform.Iommu.Tables.SetContext(Rid, 0);
        Platform.Iommu.Tables.SetPasidEntry(Rid, 0, new PasidTableEntry(true, Pgtt.SecondStage, Did, 0, 4, Stage2.RootAddress, levels, DirtyTracking: dirty));
    }

    public void SetupFirstStage(int levels, ulong iova, ulong pa, ulong length, PageSize page = PageSize.Size4K)
    {
        Stage1 = new PageTable(HostTables, TableStage.First, levels);
        Stage1.Map(iova, pa, length, Access.ReadWrite, page);
        Platform.Iommu.Tables.SetContext(Rid, 0);
        Platform.Iommu.Tables.SetPasidEntry(Rid, 0, new PasidTableEntry(true, Pgtt.FirstStage, Did, Stage1.RootAddress, levels, 0, 4));
    }

    /// <summary>
    /// Nested: guest RAM [0, ramBytes) at host PA ramHpa mapped GPA=HPA-offset by stage 2 (s2Page
    /// leaves); the guest's stage-1 table lives inside guest RAM and maps iova → gpa.
    /// </summary>
    public void SetupNested(int s1Levels, int s2Levels, ulong iova, ulong gpa, ulong length, PageSize s2Page = PageSize.Size4K, ulong ramBytes = 64UL << 20)
    {
        ulong ramHpa = Platform.Frames.AllocateContiguous(ramBytes, 1UL << 30);
        Stage2 = new PageTable(HostTables, TableStage.Second, s2Levels);
        Stage2.Map(0, ramHpa, ramBytes, Access.ReadWrite, s2Page);
        var guestMem = new GuestTableMemory(Platform.Memory, ramHpa, ramBytes);
        Stage1 = new PageTable(guestMem, TableStage.First, s1Levels);
        Stage1.Map(iova, gpa, length, Access.ReadWrite, PageSize.Size4K);
        Platform.Iommu.Tables.SetContext(Rid, 0);
        Platform.Iommu.Tables.SetPasidEntry(Rid, 0, new PasidTableEntry(true, Pgtt.Nested, Did, Stage1.RootAddress, s1Levels, Stage2.RootAddress, s2Levels));
    }

    public DmaResult Dma(ulong iova, int bytes = 64, Access op = Access.Write)
        => Platform.ExecuteDma(Rid, null, iova, bytes, op);

    /// <summary>Guest tables at GPAs inside a contiguous host range, allocated from the top down.</summary>
    private sealed class GuestTableMemory(PhysicalMemory mem, ulong ramHpa, ulong ramBytes) : ITableMemory
    {
        private ulong _nextTop = ramBytes;
        public ulong ReadEntry(ulong gpa) => mem.ReadU64(ramHpa + gpa);
        public void WriteEntry(ulong gpa, ulong value) => mem.WriteU64(ramHpa + gpa, value);
        public ulong AllocateTablePage()
        {
            _nextTop -= 4096;
            for (ulong i = 0; i < 4096; i += 8) mem.WriteU64(ramHpa + _nextTop + i, 0);
            return _nextTop;
        }
        public void FreeTablePage(ulong address) { }
    }
}
