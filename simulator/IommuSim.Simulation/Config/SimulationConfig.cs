using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using IommuSim.Workloads;

namespace IommuSim.Simulation.Config;

/// <summary>The root of a config file: one simulated system and its workload (spec/config.md).</summary>
public sealed class SimulationConfig
{
    public string Name { get; set; } = "run";
    public SimulationOptions Simulation { get; set; } = new();
    public MemoryOptions Memory { get; set; } = new();
    public PcieOptions Pcie { get; set; } = new();
    public IommuOptions Iommu { get; set; } = new();
    public TranslationOptions Translation { get; set; } = new();
    public List<VmOptions> Vms { get; set; } = [];
    public List<DeviceOptions> Devices { get; set; } = [];
    public List<WorkloadOptions> Workloads { get; set; } = [];
}

public sealed class SimulationOptions
{
    public ulong Seed { get; set; } = 1;
    /// <summary>Requests issued before measuring starts (stats are reset after them).</summary>
    public long WarmupRequests { get; set; }
    /// <summary>Measured requests; the run ends when all have completed (0 = no limit).</summary>
    public long MaxRequests { get; set; } = 100_000;
    /// <summary>Simulated-time limit in µs (0 = none).</summary>
    public double MaxSimulatedUs { get; set; }
    /// <summary>Interval of the time series (IOTLB miss rate over time) in simulated µs.</summary>
    public double SampleIntervalUs { get; set; } = 5;
}

public sealed class TranslationOptions
{
    /// <summary><c>off</c>, <c>passthrough</c>, <c>single-stage</c>, <c>nested</c> or <c>shadow</c>.</summary>
    public string Design { get; set; } = Uapi.Designs.TranslationDesigns.SingleStage.Name;
    public StageOptions Stage1 { get; set; } = new();
    public StageOptions Stage2 { get; set; } = new();
    public DmaApiOptions DmaApi { get; set; } = new();
    /// <summary>The VMM's vIOMMU (nested on SMMUv3): how guest invalidations reach the SMMU.</summary>
    public ViommuOptions Viommu { get; set; } = new();

    /// <summary>The design names (<see cref="Uapi.Designs.TranslationDesigns"/>).</summary>
    public static IReadOnlyList<string> Designs => Uapi.Designs.TranslationDesigns.Names;
}

/// <summary>translation.viommu: the vIOMMU a VMM gives a nested guest (docs/viommu.md).</summary>
public sealed class ViommuOptions
{
    /// <summary>
    /// true: a Tegra241 CMDQV vIOMMU with a guest-owned VCMDQ (IOMMU_HW_QUEUE_ALLOC): the guest writes its TLBI +
    /// CMD_SYNC into its own queue, which the SMMU consumes, no VM exit. false (default): an ARM_SMMUV3 vIOMMU, each
    /// guest invalidation traps to the VMM, which forwards it with IOMMU_HWPT_INVALIDATE.
    /// </summary>
    public bool HwQueue { get; set; }
}

public sealed class StageOptions
{
    public int Levels { get; set; } = 4;
    /// <summary><c>4K</c>, <c>2M</c> or <c>1G</c>: the largest leaf the mapping may use.</summary>
    public string PageSize { get; set; } = "4K";

    [System.Text.Json.Serialization.JsonIgnore]
    public PageSize Leaf => PageSizes.TryParse(PageSize, out var s) ? s : Hardware.PageTables.PageSize.Size4K;
}

public sealed class DmaApiOptions
{
    /// <summary><c>strict</c>, <c>lazy</c> or <c>none</c>.</summary>
    public string Mode { get; set; } = "strict";
    /// <summary>Lazy mode: unmaps batched before a flush.</summary>
    public int FlushQueueEntries { get; set; } = 256;
    /// <summary>Lazy mode: the flush timer (µs). Linux: 10 ms.</summary>
    public double FlushTimeoutUs { get; set; } = 10_000;
    /// <summary>Driver CPU time of a map call: IOVA allocation and page-table writes (ns).</summary>
    public double MapCostNs { get; set; } = 200;
    /// <summary>Driver CPU time of an unmap call before any invalidation: clearing PTEs, freeing the IOVA (ns).</summary>
    public double UnmapCostNs { get; set; } = 150;
    /// <summary>Driver CPU time to queue invalidation descriptors and ring the doorbell (ns); the wait itself is the hardware's.</summary>
    public double InvalidationSubmitNs { get; set; } = 100;
    /// <summary>Cost of one VM exit and re-entry (shadow mapping traps, nested guest invalidations) (ns).</summary>
    public double VmExitNs { get; set; } = 1500;
    /// <summary>Host I/O page-fault handling time per page request (demand-paged devices) (ns).</summary>
    public double IopfHandlingNs { get; set; } = 5000;
    /// <summary>Cost of one ioctl round trip into the kernel (VFIO / iommufd map and unmap) (ns).</summary>
    public double IoctlNs { get; set; } = 400;
    /// <summary>Unmap invalidations carry the leaf-only hint (IH = 1), keeping the paging-structure caches.
    /// Default false: every unmap invalidation also flushes them (the model's behaviour before this option).</summary>
    public bool LeafOnlyInvalidation { get; set; }
    /// <summary>IH of unmap invalidations: <c>never</c> (IH = 0: the paging-structure caches are flushed too; default, the
    /// model's behaviour before this option), <c>kernel</c> (IH = 1 exactly when the unmap freed no page-table page, as
    /// intel_iommu_tlb_sync sets it: <c>ih = list_empty(&amp;gather-&gt;freelist)</c>) or <c>always</c> (IH = 1 on every unmap). <c>leafOnlyInvalidation = true</c> forces <c>always</c> whatever this says.</summary>
    public string InvalidationHint { get; set; } = "never";
    public static readonly string[] InvalidationHints = ["never", "kernel", "always"];

    public static readonly string[] Modes = ["strict", "lazy", "none"];
}

public sealed class VmOptions
{
    public string Name { get; set; } = "";
    public long MemoryMiB { get; set; } = 4096;
}
