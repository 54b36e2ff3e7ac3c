namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_ioas: an I/O address space of user mappings, independent of any hardware
/// format. HWPT_PAGING objects mirror it into domains; they hold a reference to it.
/// </summary>
public sealed class Ioas : IommufdObject
{
    private readonly List<HwptPaging> _hwptList = [];

    internal Ioas(IommufdContext ictx) : base(ictx) { }

    public override IommufdObjectType Type => IommufdObjectType.Ioas;

    public Iopt.IoPagetable Iopt { get; } = new();

    /// <summary>ioas->hwpt_list: the paging HWPTs over this IOAS, auto ones first to be reused.</summary>
    public IReadOnlyList<HwptPaging> HwptList => _hwptList;

    internal void AddHwpt(HwptPaging h) => _hwptList.Add(h);
    internal void RemoveHwpt(HwptPaging h) => _hwptList.Remove(h);

    /// <summary>iommufd_ioas_destroy: everything still mapped is unmapped.</summary>
    internal override void Release() => Iopt.UnmapAll(out _);
}
