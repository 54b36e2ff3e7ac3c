using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_group: a context's view of one iommu_group. The hardware attaches groups, not
/// devices, so the state is per (group, PASID): which HWPT the group is attached to and which of
/// its bound devices have attached (each still attaches individually, for its reserved regions).
/// </summary>
public sealed class IommufdGroup
{
    /// <summary>struct iommufd_attach: one PASID's attachment of the group.</summary>
    public sealed class Attach(HwptBase hwpt)
    {
        public HwptBase Hwpt { get; internal set; } = hwpt;
        public List<IommufdDevice> Devices { get; } = [];
    }

    private readonly Dictionary<uint, Attach> _pasidAttach = [];

    internal IommufdGroup(int number, IReadOnlyList<DeviceSpec> members)
    {
        Number = number;
        Members = members;
    }

    public int Number { get; }

    /// <summary>Every device of the iommu_group (bound or not): the hardware attaches them all.</summary>
    public IReadOnlyList<DeviceSpec> Members { get; }

    /// <summary>Bound devices of this group in this context.</summary>
    internal List<IommufdDevice> Bound { get; } = [];

    public Attach? Get(uint pasid) => _pasidAttach.GetValueOrDefault(pasid);

    internal void Set(uint pasid, Attach a) => _pasidAttach[pasid] = a;

    internal void Remove(uint pasid) => _pasidAttach.Remove(pasid);

    /// <summary>Whether any PASID other than the RID's is attached.</summary>
    public bool HasPasidAttached => _pasidAttach.Keys.Any(p => p != IommufdContext.NoPasid);

    public IEnumerable<uint> AttachedPasids => _pasidAttach.Keys;
}
