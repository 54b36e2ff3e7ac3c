using IommuSim.Engine.Time;
using IommuSim.Simulation.Config;
using IommuSim.Hardware;
using IommuSim.Uapi;
using IommuSim.Uapi.Designs;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Driver;

namespace IommuSim.Simulation.Running;

/// <summary>The simulated system a config describes, ready to run.</summary>
public sealed class BuiltSystem
{
    public required Platform Platform { get; init; }
    public required ProvisionedSystem Provisioned { get; init; }
    /// <summary>The run-time DMA API the device models map and unmap through.</summary>
    public required KernelDmaApi DmaApi { get; init; }
    /// <summary>The host I/O page-fault handler, when a device is demand-paged.</summary>
    public IopfHandler? Iopf { get; init; }
}

/// <summary>
/// Builds a platform from a config and programs it the way a host kernel, a VFIO program or a VMM
/// would — every design goes through the uAPI layer (<see cref="SystemProvisioner"/>) — and then
/// gives each device the run-time mapping target and fault path its design defines
/// (<see cref="TranslationDesign"/>): the kernel's domain, the VFIO program's IOAS domain (ioctl per
/// call), the guest's own stage-1 table (nested: a trapped invalidation per unmap) or the VMM's
/// shadow table (a VM exit per map and unmap).
/// </summary>
public static class SystemBuilder
{
    /// <summary>IOVA window of run-time (per-buffer) mappings, clear of configured DMA regions.</summary>
    public const ulong DynamicIovaBase = TranslationDesign.DynamicIovaBase;
    public const ulong DynamicIovaBytes = TranslationDesign.DynamicIovaBytes;
    /// <summary>Memory buffers of run-time mappings are taken from (round-robin).</summary>
    public const ulong BufferPoolBytes = TranslationDesign.BufferPoolBytes;

    public static BuiltSystem Build(SimulationConfig cfg)
    {
        var t = cfg.Translation;
        var design = TranslationDesigns.Get(t.Design);
        var platform = new Platform(cfg.Memory, cfg.Pcie, cfg.Iommu, design.IommuOnPath, cfg.Simulation.Seed);
        foreach (var d in cfg.Devices) platform.AddDevice(d);

        var request = new ProvisionRequest(
            t.Design,
            new StageSpec(t.Stage1.Levels, t.Stage1.Leaf),
            new StageSpec(t.Stage2.Levels, t.Stage2.Leaf),
            cfg.Vms.Select(v => new VmSpec(v.Name, (ulong)v.MemoryMiB << 20)).ToList(),
            cfg.Devices.Select(d => new DeviceProvision(d.RequesterId, d.Attach.Via,
                // Demand-paged regions are not mapped up front: their pages arrive through PRI.
                d.Attach.DemandPaging ? [] : d.DmaRegions.Select(r => new DmaRegion(r.Iova.Value, (ulong)r.Bytes.Bytes)).ToList(),
                string.IsNullOrEmpty(d.Attach.Vm) ? null : d.Attach.Vm, d.Attach.Pasid)).ToList(),
            t.Viommu.HwQueue);
        ProvisionedSystem sys;
        try
        {
            sys = SystemProvisioner.Provision(platform, request);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new ConfigError($"config error: {cfg.Name}: the uAPI calls that build design '{t.Design}' failed: {e.Message}");
        }

        var a = t.DmaApi;
        var api = sys.Kernel.CreateDmaApi(DmaApiCosts.FromNs(a.Mode, a.MapCostNs, a.UnmapCostNs, a.InvalidationSubmitNs, a.VmExitNs, a.IoctlNs,
            a.FlushQueueEntries, a.FlushTimeoutUs));
        platform.Stats.Register(api);
        // leafOnlyInvalidation forces IH = 1 (Rubin et al.'s leaf-only mode) whatever invalidationHint says.
        var hint = a.LeafOnlyInvalidation ? InvalidationHint.Always : a.InvalidationHint switch
        {
            "kernel" => InvalidationHint.Kernel,
            "always" => InvalidationHint.Always,
            _ => InvalidationHint.Never,
        };
        var costs = new RunTimeCosts(SimTime.FromNs(a.VmExitNs), SimTime.FromNs(a.IoctlNs), hint);
        IopfHandler? iopf = null;
        foreach (var dev in platform.Devices)
        {
            if (!sys.Devices.TryGetValue(dev.RequesterId, out var pd)) continue;
            var target = design.MappingTarget(platform, dev, pd, costs);
            api.Register(dev, target);
            if (dev.Options.Attach.DemandPaging)
            {
                iopf ??= platform.Stats.Register(sys.Kernel.CreateIopfHandler(SimTime.FromNs(a.IopfHandlingNs)));
                design.DeliverFaults(iopf, dev, target, dev.Options.DmaRegions.Select(r => (r.Iova.Value, (ulong)r.Bytes.Bytes)), costs);
            }
        }
        return new BuiltSystem { Platform = platform, Provisioned = sys, DmaApi = api, Iopf = iopf };
    }
}
