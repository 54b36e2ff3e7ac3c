using IommuSim.Simulation.Config;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.DmaApi;
using IommuSim.Workloads.KernelTrace;

namespace IommuSim.Simulation.Running;

/// <summary>The run-time DMA API's fixed-IOVA calls, for the kernel-trace workload (which does not see the uAPI layer).</summary>
internal sealed class FixedIovaDmaApi(KernelDmaApi api) : IFixedIovaDmaApi
{
    public string Mode => api.Mode;

    public void MapAt(DmaEngine device, ulong iova, int bytes, Access access, IDmaApiClient client, long tag, int cpu)
        => api.MapAt(device, iova, bytes, access, client, tag, cpu);

    public void UnmapAt(DmaEngine device, ulong iova, int bytes, IDmaApiClient client, long tag, int cpu)
        => api.UnmapAt(device, iova, bytes, client, tag, cpu);
}

/// <summary>Checks of kernel-trace workloads that read their file: run before anything is simulated.</summary>
internal static class KernelTracePreflight
{
    public static void Check(LoadedConfig loaded)
    {
        var cfg = loaded.Config;
        foreach (var w in cfg.Workloads.Where(w => w.Type == "kernel-trace"))
        {
            var dev = cfg.Devices.FirstOrDefault(d => d.Name == w.Device);
            var reserved = new List<(ulong, ulong, string)>
            {
                (SystemBuilder.DynamicIovaBase, SystemBuilder.DynamicIovaBase + SystemBuilder.DynamicIovaBytes, "the DMA API's own IOVA window"),
            };
            if (dev is not null)
                for (int i = 0; i < dev.DmaRegions.Count; i++)
                {
                    var r = dev.DmaRegions[i];
                    reserved.Add((r.Iova.Value, r.Iova.Value + (ulong)r.Bytes.Bytes, $"{dev.Name}'s premapped dmaRegions[{i}]"));
                }
            KernelTraceScan.Validate(ConfigValidator.ResolvePath(loaded.BaseDirectory, w.Path!), reserved, AddressBits(cfg.Translation));
        }
    }

    /// <summary>Width of the table run-time mappings go into: stage 2 (single-stage), the guest's stage 1 (nested), both (shadow).</summary>
    public static int AddressBits(TranslationOptions t)
        => Uapi.Designs.TranslationDesigns.Find(t.Design)?.RunTimeAddressBits(t.Stage1.Levels, t.Stage2.Levels) ?? 0;
}
