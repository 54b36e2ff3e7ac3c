using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.Iopt;

/// <summary>
/// struct iopt_area: one mapping of an IOAS, [Iova, Last] → bytes of <see cref="Pages"/> from
/// <see cref="StartByte"/>. Areas never overlap and are never split by IOAS_UNMAP (only the VFIO
/// type1 v1 shim cuts them, see <see cref="IoPagetable.CutIova"/>).
/// </summary>
public sealed class IoptArea(IoptPages pages, ulong startByte, ulong iova, ulong length, Access prot)
{
    public IoptPages Pages { get; } = pages;
    public ulong StartByte { get; } = startByte;
    public ulong Iova { get; } = iova;
    public ulong Length { get; } = length;
    public ulong Last => Iova + Length - 1;
    public Access Prot { get; } = prot;

    /// <summary>Where the byte mapped at <see cref="Iova"/> sits in the pages' source (user VA or file offset).</summary>
    public ulong SourceAddress => Pages.SourceAddress + StartByte;

    /// <summary>area->page_offset: where the first byte sits in its page.</summary>
    public ulong PageOffset => SourceAddress % IoPagetable.PageSize;

    /// <summary>Whether the area is mapped into the IOAS's domains (its pages pinned).</summary>
    public bool InDomains { get; internal set; }

    /// <summary>area->num_accesses: pins in-kernel users (ACCESS objects) hold on pages of this area. IOAS_UNMAP
    /// asks those accesses to unpin before it removes the area (iommufd_access_notify_unmap).</summary>
    public int NumAccesses { get; internal set; }
}
