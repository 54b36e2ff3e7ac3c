using IommuSim.Simulation.Config;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi;
using IommuSim.Uapi.DmaApi;

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
/// gives each device a run-time mapping target for the DMA API: the kernel's domain, the VFIO
/// program's IOAS domain (ioctl per call), the guest's own stage-1 table (nested: a trapped
/// invalidation per unmap) or the VMM's shadow table (a VM exit per map and unmap).
/// </summary>
public static class SystemBuilder
{
    /// <summary>IOVA window of run-time (per-buffer) mappings, clear of configured DMA regions.</summary>
    public const ulong DynamicIovaBase = 0x7000_0000_0000;
    public const ulong DynamicIovaBytes = 0x0800_0000_0000;
    /// <summary>Memory buffers of run-time mappings are taken from (round-robin).</summary>
    public const ulong BufferPoolBytes = 64UL << 20;

    public static BuiltSystem Build(SimulationConfig cfg)
    {
        var t = cfg.Translation;
        var platform = new Platform(cfg.Memory, cfg.Pcie, cfg.Iommu, t.Design != "off", cfg.Simulation.Seed);
        foreach (var d in cfg.Devices) platform.AddDevice(d);

        var request = new ProvisionRequest(
            t.Design,
            new StageSpec(t.Stage1.Levels, t.Stage1.Leaf),
            new StageSpec(t.Stage2.Levels, t.Stage2.Leaf),
            cfg.Vms.Select(v => new VmSpec(v.Name, (ulong)v.MemoryMiB << 20)).ToList(),
            cfg.Devices.Select(d => new DeviceProvision(d.RequesterId, d.Attach.Via,
                // Demand-paged regions are not mapped up front: their pages arrive through PRI.
                d.Attach.DemandPaging ? [] : d.DmaRegions.Select(r => new DmaRegion(r.Iova.Value, (ulong)r.Bytes.Bytes)).ToList(),
                string.IsNullOrEmpty(d.Attach.Vm) ? null : d.Attach.Vm, d.Attach.Pasid)).ToList());
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
        var api = new KernelDmaApi(platform, DmaApiCosts.FromNs(a.Mode, a.MapCostNs, a.UnmapCostNs, a.InvalidationSubmitNs, a.VmExitNs, a.IoctlNs,
            a.FlushQueueEntries, a.FlushTimeoutUs));
        platform.Stats.Register(api);
        IopfHandler? iopf = null;
        foreach (var dev in platform.Devices)
        {
            if (!sys.Devices.TryGetValue(dev.RequesterId, out var pd)) continue;
            var target = TargetFor(platform, t, a, dev, pd);
            api.Register(dev, target);
            if (dev.Options.Attach.DemandPaging)
            {
                iopf ??= platform.Stats.Register(new IopfHandler(platform, Engine.Time.SimTime.FromNs(a.IopfHandlingNs)));
                // Nested and shadow: the guest handles the fault, reached through the VMM both ways (a VM exit and an
                // ioctl each). Shadow adds one more: the guest's new mapping traps (caching mode) so the VMM can copy it
                // into the shadow table.
                long trip = Engine.Time.SimTime.FromNs(a.VmExitNs) + Engine.Time.SimTime.FromNs(a.IoctlNs);
                long delivery = t.Design switch { "nested" => 2 * trip, "shadow" => 3 * trip, _ => 0 };
                iopf.Register(dev, target, dev.Options.DmaRegions.Select(r => (r.Iova.Value, (ulong)r.Bytes.Bytes)), delivery);
            }
        }
        return new BuiltSystem { Platform = platform, Provisioned = sys, DmaApi = api, Iopf = iopf };
    }

    private static IMappingTarget TargetFor(Platform p, TranslationOptions t, DmaApiOptions a, DmaEngine dev, ProvisionedDevice pd)
    {
        long ns(double v) => Engine.Time.SimTime.FromNs(v);
        bool ats = dev.Options.Ats.Enabled;
        ushort rid = dev.RequesterId.Value;
        uint pasid = pd.Pasid ?? 0;
        if (pd.Table is null) // off, passthrough: dma_map returns the physical address
        {
            ulong pool = p.Frames.AllocateContiguous(BufferPoolBytes, 2UL << 20);
            return new IdentityTarget(pool, BufferPoolBytes);
        }
        switch (t.Design)
        {
            case "nested":
            {
                // The guest maps in its own stage-1 table (buffers: guest RAM below its page-table
                // area); each invalidation traps to the VMM, which issues HWPT_INVALIDATE.
                ulong poolGpa = pd.Vm!.MemoryBytes - (64UL << 20) - BufferPoolBytes;
                return new PageTableTarget(pd.Table, pd.DomainId, pasid, rid, ats, poolGpa, BufferPoolBytes,
                    DynamicIovaBase, DynamicIovaBytes, invalidateOverheadPs: ns(a.VmExitNs) + ns(a.IoctlNs));
            }
            case "shadow":
            {
                // A shadowing vIOMMU runs in caching mode: the guest must invalidate after every map
                // (trap: VM exit, then the VMM's IOAS_MAP ioctl) and its unmap invalidations trap too
                // (one per unmap when strict, one per flush when the guest is lazy).
                ulong poolGpa = pd.Vm!.MemoryBytes - (64UL << 20) - BufferPoolBytes;
                return new PageTableTarget(pd.Table, pd.DomainId, pasid, rid, ats, pd.Vm.GpaToHpa(poolGpa), BufferPoolBytes,
                    DynamicIovaBase, DynamicIovaBytes,
                    mapOverheadPs: ns(a.VmExitNs) + ns(a.IoctlNs), invalidateOverheadPs: ns(a.VmExitNs) + ns(a.IoctlNs));
            }
            default: // single-stage
            {
                ulong pool = p.Frames.AllocateContiguous(BufferPoolBytes, 2UL << 20);
                // The host kernel's DMA API maps in its own domain; a VFIO program maps each buffer
                // with IOAS_MAP / VFIO_IOMMU_MAP_DMA, one ioctl per call.
                long ioctl = pd.KernelDomain is null ? ns(a.IoctlNs) : 0;
                return new PageTableTarget(pd.Table, pd.DomainId, pasid, rid, ats, pool, BufferPoolBytes, DynamicIovaBase, DynamicIovaBytes,
                    mapOverheadPs: ioctl, unmapOverheadPs: ioctl, leafOnlyInvalidation: a.LeafOnlyInvalidation || a.InvalidationHint == "always",
                    kernelInvalidationHint: a.InvalidationHint == "kernel");
            }
        }
    }
}
