using IommuSim.Cli.Config;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Cli.Running;

/// <summary>
/// Writes the translation structures for a design straight into the hardware (the issue-3 setup
/// path, used until the uAPI provisioner builds every design): per device a context entry and a
/// PASID-table entry with the design's PGTT, and page tables mapping each DMA region to newly
/// allocated host memory (nested: to guest RAM, itself mapped GPA→HPA by stage 2).
/// </summary>
internal static class DirectTranslationSetup
{
    public static void Apply(Platform p, SimulationConfig cfg)
    {
        var t = cfg.Translation;
        if (t.Design == "off") return;
        var host = new HostTableMemory(p.Memory, p.Frames);
        var vms = new Dictionary<string, GuestRam>();
        ushort did = 0;
        foreach (var dev in cfg.Devices)
        {
            did++;
            var rid = dev.RequesterId;
            p.Iommu.Tables.SetContext(rid, 0);
            PasidTableEntry pte;
            switch (t.Design)
            {
                case "passthrough":
                    pte = new PasidTableEntry(true, Pgtt.PassThrough, did, 0, 4, 0, t.Stage2.Levels);
                    break;
                case "single-stage":
                {
                    var s2 = new PageTable(host, TableStage.Second, t.Stage2.Levels);
                    foreach (var r in dev.DmaRegions) MapToNewMemory(p, s2, r, t.Stage2.Leaf);
                    pte = new PasidTableEntry(true, Pgtt.SecondStage, did, 0, 4, s2.RootAddress, t.Stage2.Levels);
                    break;
                }
                default: // nested and shadow
                {
                    var vmName = string.IsNullOrEmpty(dev.Attach.Vm) ? cfg.Vms[0].Name : dev.Attach.Vm;
                    if (!vms.TryGetValue(vmName, out var ram))
                    {
                        var vm = cfg.Vms.First(v => v.Name == vmName);
                        ram = new GuestRam(p, (ulong)vm.MemoryMiB << 20, t.Stage2.Levels, t.Stage2.Leaf, host);
                        vms[vmName] = ram;
                    }
                    var s1 = new PageTable(ram, TableStage.First, t.Stage1.Levels);
                    var gpas = new List<(ulong Iova, ulong Gpa, ulong Bytes)>();
                    foreach (var r in dev.DmaRegions)
                    {
                        ulong gpa = ram.AllocateGuestBuffer((ulong)r.Bytes.Bytes, t.Stage1.Leaf.Bytes());
                        s1.Map(r.Iova.Value, gpa, (ulong)r.Bytes.Bytes, Access.ReadWrite, t.Stage1.Leaf);
                        gpas.Add((r.Iova.Value, gpa, (ulong)r.Bytes.Bytes));
                    }
                    if (t.Design == "nested")
                    {
                        pte = new PasidTableEntry(true, Pgtt.Nested, did, s1.RootAddress, t.Stage1.Levels, ram.Stage2.RootAddress, t.Stage2.Levels);
                    }
                    else
                    {
                        // Shadow: the VMM merges guest stage 1 and host stage 2 into one host table.
                        var shadow = new PageTable(host, TableStage.Second, Math.Max(t.Stage1.Levels, t.Stage2.Levels));
                        var leaf = (PageSize)Math.Min((int)t.Stage1.Leaf, (int)t.Stage2.Leaf);
                        foreach (var (iova, gpa, bytes) in gpas)
                            shadow.Map(iova, ram.HostAddress + gpa, bytes, Access.ReadWrite, leaf);
                        pte = new PasidTableEntry(true, Pgtt.SecondStage, did, 0, 4, shadow.RootAddress, shadow.Levels);
                    }
                    break;
                }
            }
            p.Iommu.Tables.SetPasidEntry(rid, 0, pte);
            if (dev.Attach.Pasid is uint pasid && pasid != 0) p.Iommu.Tables.SetPasidEntry(rid, pasid, pte);
        }
    }

    private static void MapToNewMemory(Platform p, PageTable table, DmaRegionOptions r, PageSize leaf)
    {
        ulong bytes = (ulong)r.Bytes.Bytes;
        ulong align = Math.Max(4096UL, Math.Min(leaf.Bytes(), 1UL << 30));
        ulong pa = p.Frames.AllocateContiguous(bytes, align);
        table.Map(r.Iova.Value, pa, bytes, Access.ReadWrite, leaf);
    }

    /// <summary>A VM's RAM: contiguous host memory mapped GPA 0.. by a stage-2 table; guest stage-1 tables live in it.</summary>
    private sealed class GuestRam : ITableMemory
    {
        private readonly Platform _p;
        private readonly ulong _bytes;
        private ulong _nextBuffer = 1UL << 20; // leave the first MiB to "firmware"
        private ulong _nextTableTop;

        public GuestRam(Platform p, ulong bytes, int s2Levels, PageSize s2Leaf, HostTableMemory host)
        {
            _p = p;
            _bytes = bytes;
            HostAddress = p.Frames.AllocateContiguous(bytes, 1UL << 30);
            Stage2 = new PageTable(host, TableStage.Second, s2Levels);
            Stage2.Map(0, HostAddress, bytes, Access.ReadWrite, s2Leaf);
            _nextTableTop = bytes;
        }

        public ulong HostAddress { get; }
        public PageTable Stage2 { get; }

        public ulong AllocateGuestBuffer(ulong bytes, ulong align)
        {
            ulong a = (_nextBuffer + align - 1) & ~(align - 1);
            if (a + bytes > _nextTableTop) throw new ConfigError($"config error: a VM's memoryMiB ({_bytes >> 20}) is too small for its devices' dmaRegions");
            _nextBuffer = a + bytes;
            return a;
        }

        public ulong ReadEntry(ulong gpa) => _p.Memory.ReadU64(HostAddress + gpa);
        public void WriteEntry(ulong gpa, ulong value) => _p.Memory.WriteU64(HostAddress + gpa, value);
        public ulong AllocateTablePage()
        {
            _nextTableTop -= 4096;
            if (_nextTableTop < _nextBuffer) throw new ConfigError("config error: a VM's memoryMiB is too small for its guest page tables");
            for (ulong i = 0; i < 4096; i += 8) _p.Memory.WriteU64(HostAddress + _nextTableTop + i, 0);
            return _nextTableTop;
        }
        public void FreeTablePage(ulong address) { }
    }
}
