using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using IommuSim.Hardware.Smmu;

namespace IommuSim.Hardware;

/// <summary>Outcome of one synchronous DMA (uAPI scripts, tests).</summary>
public readonly record struct DmaResult(bool Faulted, FaultReason Reason, ulong PhysicalAddress, long LatencyPs, int WalkReads);

/// <summary>
/// The simulated machine: scheduler, physical memory and its timing, the IOMMU, the root complex
/// and the PCIe devices, each on its own link. Software (the uAPI layer) programs it through
/// <see cref="Iommu"/>'s tables and invalidation queue (VT-d) or <see cref="Smmu"/>'s stream table
/// and command queue (SMMUv3, <c>iommu.architecture = smmuv3</c>); workloads drive its devices.
/// The root complex sees either through <see cref="ITranslationAgent"/>.
/// </summary>
public sealed class Platform
{
    /// <summary>Host-physical memory handed out for tables and user memory starts here (below: firmware, MMIO).</summary>
    public const ulong AllocatorBase = 0x100_0000;       // 16 MiB
    public const ulong PhysicalLimit = 1UL << 46;        // 64 TiB of simulated physical address space

    private readonly Dictionary<ushort, DmaEngine> _byRid = [];
    private readonly List<DmaEngine> _devices = [];
    private readonly PcieOptions _pcie;
    private readonly List<HardwareObserver> _observers = [];
    private HardwareObserver? _observer;

    public Platform(MemoryOptions memory, PcieOptions pcie, IommuOptions iommu, bool iommuOnPath, ulong seed)
    {
        Seed = seed;
        _pcie = pcie;
        Random = SimRandom.ForStream(seed, "platform");
        Scheduler = new Scheduler(4096);
        Memory = new PhysicalMemory();
        Frames = new FrameAllocator(Memory, AllocatorBase, PhysicalLimit);
        Timing = Stats.Register(new MemoryTimingModel(memory, SimRandom.ForStream(seed, "memory")));
        Iommu = Stats.Register(new IommuUnit(iommu, Scheduler, Memory, Frames, Timing, SimRandom.ForStream(seed, "iommu")));
        ITranslationAgent agent = Iommu;
        if (iommu.IsSmmu)
        {
            // The VT-d unit stays built (off the path, idle) so that code written for it keeps a target;
            // only the SMMU translates.
            Smmu = Stats.Register(new SmmuUnit(iommu.Smmu, Scheduler, Memory, Frames, Timing));
            SmmuAdapter = new SmmuPcieAdapter(Smmu);
            agent = SmmuAdapter;
        }
        TranslationAgent = iommuOnPath ? agent : null;
        RootComplex = Stats.Register(new RootComplex(Scheduler, Timing, TranslationAgent, pcie));
    }

    public ulong Seed { get; }
    public SimRandom Random { get; }
    public Scheduler Scheduler { get; }
    public PhysicalMemory Memory { get; }
    public FrameAllocator Frames { get; }
    public MemoryTimingModel Timing { get; }
    public IommuUnit Iommu { get; }
    /// <summary>The SMMUv3 when <c>iommu.architecture = smmuv3</c>, else null.</summary>
    public SmmuUnit? Smmu { get; }
    public SmmuPcieAdapter? SmmuAdapter { get; }
    /// <summary>The IOMMU on the PCIe path (VT-d unit or SMMU adapter), null when the IOMMU is off the path.</summary>
    public ITranslationAgent? TranslationAgent { get; }
    /// <summary><c>vtd</c> or <c>smmuv3</c>.</summary>
    public string Architecture => Smmu is null ? "vtd" : "smmuv3";
    public RootComplex RootComplex { get; }
    public StatsRegistry Stats { get; } = new();
    public IReadOnlyList<DmaEngine> Devices => _devices;
    public bool IommuOnPath => RootComplex.IommuOnPath;

    public DmaEngine AddDevice(DeviceOptions options)
    {
        var rid = options.RequesterId;
        if (_byRid.ContainsKey(rid.Value)) throw new ArgumentException($"two devices at {rid}");
        var link = Stats.Register(new PcieLink(options.Name, _pcie));
        var dev = new DmaEngine(options, RootComplex.AddPort(link), RootComplex, Scheduler);
        Stats.Register(dev.Stats);
        Stats.Register(dev.Ats);
        Iommu.RegisterEndpoint(rid.Value, dev);
        Smmu?.RegisterEndpoint(rid.Value, new SmmuAtsEndpoint(dev));
        Attach(dev, _observer);
        _devices.Add(dev);
        _byRid[rid.Value] = dev;
        return dev;
    }

    /// <summary>
    /// Hangs an observer on every hardware block's hooks (devices added later get it too). Observers
    /// see events in the order they were added; with none, each hook site costs a null check.
    /// </summary>
    public void AddObserver(HardwareObserver observer)
    {
        _observers.Add(observer);
        ApplyObservers();
    }

    public void RemoveObserver(HardwareObserver observer)
    {
        _observers.Remove(observer);
        ApplyObservers();
    }

    private void ApplyObservers()
    {
        _observer = ObserverFanout.Combine([.. _observers]);
        foreach (var d in _devices) Attach(d, _observer);
        RootComplex.Observer = _observer;
        Iommu.SetObserver(_observer);
        Smmu?.SetObserver(_observer);
    }

    private static void Attach(DmaEngine device, HardwareObserver? observer)
    {
        device.Observer = observer;
        device.Link.Upstream.Observer = observer;
        device.Link.Downstream.Observer = observer;
    }

    public DmaEngine? Device(RequesterId rid) => _byRid.GetValueOrDefault(rid.Value);

    public DmaEngine? Device(string name) => _devices.Find(d => d.Name == name);

    /// <summary>Runs events until <paramref name="done"/> holds (checked first) or nothing is pending.</summary>
    public void RunUntil(Func<bool> done)
    {
        if (done()) return;
        Scheduler.Run(stopWhen: done);
    }

    /// <summary>Issues one DMA from a device and runs the simulation until it completes.</summary>
    public DmaResult ExecuteDma(RequesterId rid, uint? pasid, ulong iova, int bytes, Access op)
    {
        var dev = Device(rid) ?? throw new ArgumentException($"no device at {rid}");
        if (op is not (Access.Read or Access.Write)) throw new ArgumentException("op must be Read or Write", nameof(op));
        var waiter = new OneShot();
        var previous = dev.Client;
        dev.Client = waiter;
        try
        {
            RunUntil(() => dev.CanIssue);
            var r = dev.Rent();
            r.Iova = iova;
            r.Bytes = bytes;
            r.IsWrite = op == Access.Write;
            r.Pasid = pasid ?? 0;
            r.HasPasid = pasid.HasValue;
            r.Measured = false;
            dev.Issue(r);
            RunUntil(() => waiter.Done is not null);
            var d = waiter.Done ?? throw new InvalidOperationException("DMA did not complete");
            var result = new DmaResult(d.Faulted, d.FaultReason, d.FirstPhysicalAddress, d.LatencyPs, d.WalkReads);
            dev.Return(d);
            return result;
        }
        finally
        {
            dev.Client = previous;
        }
    }

    private sealed class OneShot : IDmaClient
    {
        public DmaRequest? Done;
        public void OnDmaComplete(DmaEngine device, DmaRequest request) => Done = request;
    }
}
