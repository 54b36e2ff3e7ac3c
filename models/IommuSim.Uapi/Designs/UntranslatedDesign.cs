using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Uapi.DmaApi;

namespace IommuSim.Uapi.Designs;

/// <summary>
/// What <c>off</c> and <c>passthrough</c> share: DMA addresses are host-physical, so each region is
/// its own IOVA and <c>dma_map</c> returns the buffer's physical address (no table, no invalidation).
/// </summary>
public abstract class UntranslatedDesign : TranslationDesign
{
    public override void Provision(ProvisionedSystem sys, ProvisionRequest request)
    {
        foreach (var d in request.Devices)
        {
            var pd = ProvisionCalls.NewDevice(sys, d);
            Attach(sys, pd, d);
            foreach (var r in d.Regions) pd.Regions.Add(new ProvisionedRegion(r.Iova, r.Bytes, r.Iova));
        }
    }

    /// <summary>What the kernel does for the device before its regions are used.</summary>
    protected abstract void Attach(ProvisionedSystem sys, ProvisionedDevice pd, DeviceProvision d);

    public override IMappingTarget MappingTarget(Platform platform, DmaEngine device, ProvisionedDevice pd, RunTimeCosts costs)
    {
        ulong pool = platform.Frames.AllocateContiguous(BufferPoolBytes, 2UL << 20);
        return MappingTargets.Identity(pool, BufferPoolBytes);
    }
}
