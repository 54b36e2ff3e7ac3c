namespace IommuSim.Uapi.Designs;

/// <summary><c>off</c>: the IOMMU is not on the path; nothing is programmed.</summary>
public sealed class OffDesign : UntranslatedDesign
{
    public override string Name => "off";
    public override bool IommuOnPath => false;
    protected override void Attach(ProvisionedSystem sys, ProvisionedDevice pd, DeviceProvision d) { }
}
