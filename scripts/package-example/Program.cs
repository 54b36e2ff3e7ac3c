// The IommuSim library packages used from a project of one's own (docs/packaging.md; run by
// scripts/package-test.sh against the packages `dotnet pack` makes). A VT-d IOMMU with a
// single-stage 4-level table, set up the way a VFIO cdev program does it (iommufd: IOAS, HWPT,
// attach, IOAS_MAP), then 20 000 random 256-byte DMAs over a 4 MiB window, closed loop.
using IommuSim.Engine.Rng;
using IommuSim.Engine.Units;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Pcie;
using IommuSim.Uapi;
using IommuSim.Workloads;
using IommuSim.Workloads.Generators;

const ulong seed = 1, iova = 0x1_0000_0000, regionBytes = 64 << 20;
var platform = new Platform(new MemoryOptions(), new PcieOptions(), new IommuOptions(), iommuOnPath: true, seed);
var dev = platform.AddDevice(new DeviceOptions
{
    Name = "dev0", Bdf = "0000:03:00.0", Attach = { Via = "iommufd" },
    DmaRegions = { new DmaRegionOptions { Iova = new Address(iova), Bytes = new ByteSize((long)regionBytes) } },
});
SystemProvisioner.Provision(platform, new ProvisionRequest("single-stage", new StageSpec(), new StageSpec(), [],
    [new DeviceProvision(dev.RequesterId, "iommufd", [new DmaRegion(iova, regionBytes)])]));

var budget = new RequestBudget(warmup: 2_000, measured: 20_000);   // statistics restart after the warm-up
budget.MeasuredPhaseStarting += platform.Stats.ResetAll;
var workload = new RandomWorkload(
    new WorkloadOptions { Device = "dev0", Bytes = new ByteSize(256), ReadFraction = 0.5, WorkingSetBytes = new ByteSize(4 << 20) },
    dev, platform.Scheduler, budget, SimRandom.ForStream(seed, "workload0"), iova);
platform.Stats.Register(workload.RequestLatency);
workload.Start();
platform.Scheduler.Run();   // until the last measured DMA has completed

var iotlb = platform.Iommu.Iotlb;
Console.WriteLine($"measured requests completed: {budget.MeasuredCompleted}, DMAs faulted: {dev.Stats.Faulted}");
Console.WriteLine($"IOTLB: {iotlb.Lookups} lookups, miss rate {(double)iotlb.Misses / iotlb.Lookups:0.000}");
Console.WriteLine($"DMA latency: mean {dev.Stats.DmaLatency.Mean / 1000:0.0} ns, p99 {dev.Stats.DmaLatency.Percentile(99) / 1000.0:0.0} ns");
