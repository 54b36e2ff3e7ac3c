using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Vfio;

/// <summary>
/// An open legacy VFIO group (/dev/vfio/N). With an iommufd as its "container" the group uses the
/// context's compat IOAS; devices opened from it are bound and attached there.
/// </summary>
public sealed class VfioGroupFile
{
    internal VfioGroupFile(int number) => Number = number;

    public int Number { get; }

    /// <summary>group->iommufd: the container the group was set to.</summary>
    public IommufdContext? Container { get; internal set; }

    public List<VfioDeviceFile> Devices { get; } = [];
}
