namespace IommuSim.Uapi.Designs;

/// <summary><c>passthrough</c>: the kernel attaches the identity domain (PASID-table entry with PGTT = pass-through).</summary>
public sealed class PassthroughDesign : UntranslatedDesign
{
    public override string Name => "passthrough";

    protected override void Attach(ProvisionedSystem sys, ProvisionedDevice pd, DeviceProvision d)
    {
        var driver = sys.Kernel.Driver;
        ProvisionCalls.Check(driver.SetDevicePasid(pd.Spec, d.Pasid ?? 0, driver.Identity, null), "attach identity domain", d);
    }
}
