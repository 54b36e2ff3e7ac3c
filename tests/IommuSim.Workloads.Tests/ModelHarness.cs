using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Units;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Workloads.Tests;

/// <summary>A tiny platform: devices with one DMA region each, mapped single-stage (4 KiB pages) straight into the tables.</summary>
internal sealed class ModelHarness
{
    public const ulong RegionIova = 0x1_0000_0000;

    public Platform Platform { get; }
    public Scheduler Scheduler => Platform.Scheduler;

    public ModelHarness(ulong seed = 1, Action<IommuOptions>? iommu = null, Action<PcieOptions>? pcie = null)
    {
        var io = new IommuOptions();
        iommu?.Invoke(io);
        var po = new PcieOptions();
        pcie?.Invoke(po);
        Platform = new Platform(new MemoryOptions(), po, io, true, seed);
    }

    /// <summary>Adds a device at bus <paramref name="bus"/> whose region [RegionIova, +regionBytes) is mapped.</summary>
    public DmaEngine AddDevice(string name, byte bus, ulong regionBytes = 64UL << 20, int maxOutstanding = 64)
    {
        var d = new DeviceOptions
        {
            Name = name,
            Bdf = $"0000:{bus:x2}:00.0",
            MaxOutstanding = maxOutstanding,
            DmaRegions = [new DmaRegionOptions { Iova = new Address(RegionIova), Bytes = new ByteSize((long)regionBytes) }],
        };
        var dev = Platform.AddDevice(d);
        var table = new PageTable(new HostTableMemory(Platform.Memory, Platform.Frames), TableStage.Second, 4);
        ulong pa = Platform.Frames.AllocateContiguous(regionBytes, 4096);
        table.Map(RegionIova, pa, regionBytes, Access.ReadWrite, PageSize.Size4K);
        var rid = d.RequesterId;
        Platform.Iommu.Tables.SetContext(rid, 0);
        Platform.Iommu.Tables.SetPasidEntry(rid, 0, new PasidTableEntry(true, Pgtt.SecondStage, (ushort)(bus + 1), 0, 4, table.RootAddress, 4));
        return dev;
    }

    public static SimRandom Rng(ulong seed, int index = 0) => SimRandom.ForStream(seed, $"workload{index}");

    /// <summary>Starts the workloads and runs until the budget stops the run (or the time limit).</summary>
    public void Run(IEnumerable<WorkloadDriver> workloads, double limitUs = 1e6)
    {
        foreach (var w in workloads) w.Start();
        Scheduler.Run(Engine.Time.SimTime.FromUs(limitUs));
    }
}

/// <summary>Records every DMA a workload issues.</summary>
internal sealed class DmaLog : IRequestObserver
{
    public readonly List<(long TimePs, ulong Iova, int Bytes, bool Write)> Entries = [];

    public void OnIssued(long timePs, string device, uint? pasid, ulong iova, int bytes, bool write)
        => Entries.Add((timePs, iova, bytes, write));
}

/// <summary>
/// A stand-in for the uAPI layer's DMA API: IOVAs come from a window the harness already mapped;
/// a map completes after <c>mapNs</c>, an unmap after <c>unmapNs</c> (strict-like: long, the
/// invalidation and its wait; lazy-like: short, queued for a later flush).
/// </summary>
internal sealed class FakeDmaApi(Scheduler scheduler, string mode, double mapNs, double unmapNs, ulong windowIova, ulong windowBytes) : IDmaApi, IEventHandler
{
    private ulong _next;
    public string Mode => mode;
    public long Maps, Unmaps;
    public int Live;
    public int MaxLive;
    public readonly HashSet<ulong> Mapped = [];

    public void Map(DmaEngine device, int bytes, Access access, IDmaApiClient client, long tag, int cpu = 0)
    {
        ulong size = (ulong)(bytes + 4095) & ~4095UL;
        if (_next + size > windowBytes) _next = 0;
        ulong iova = windowIova + _next;
        _next += size;
        if (!Mapped.Add(iova)) throw new InvalidOperationException($"IOVA 0x{iova:x} handed out twice");
        Maps++;
        MaxLive = Math.Max(MaxLive, ++Live);
        scheduler.ScheduleIn(Engine.Time.SimTime.FromNs(mapNs), this, 0, tag, new Pending(client, iova));
    }

    public void Unmap(DmaEngine device, ulong iova, int bytes, IDmaApiClient client, long tag, int cpu = 0)
    {
        if (!Mapped.Remove(iova)) throw new InvalidOperationException($"unmap of IOVA 0x{iova:x} that is not mapped");
        Unmaps++;
        Live--;
        scheduler.ScheduleIn(Engine.Time.SimTime.FromNs(unmapNs), this, 1, tag, new Pending(client, iova));
    }

    public void OnEvent(int kind, long arg, object? payload)
    {
        var p = (Pending)payload!;
        if (kind == 0) p.Client.OnMapped(arg, p.Iova);
        else p.Client.OnUnmapped(arg);
    }

    private sealed record Pending(IDmaApiClient Client, ulong Iova);
}
