using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.DmaApi;

/// <summary>
/// No translation (IOMMU off, or the identity/pass-through domain): dma_map returns the buffer's
/// physical address and nothing is ever invalidated; calls still cost their CPU time.
/// </summary>
public sealed class IdentityTarget(ulong bufferBase, ulong bufferBytes) : IMappingTarget
{
    public ushort DomainId => 0;
    public ulong BufferBase { get; } = bufferBase;
    public ulong BufferBytes { get; } = bufferBytes;
    public ulong IovaBase => BufferBase;
    public ulong IovaBytes => BufferBytes;
    public long MapOverheadPs => 0;
    public long UnmapOverheadPs => 0;
    public long InvalidateOverheadPs => 0;
    public bool IdentityMapped => true;
    public IotlbGather CreateGather() => IotlbGather.None;
    public void Map(ulong iova, ulong output, ulong bytes, Access access, IotlbGather flush) { }
    public void Unmap(ulong iova, ulong bytes, IotlbGather? flush, List<ulong> freedTablePages) { }
    public void PutTablePages(List<ulong> pages) => pages.Clear();
    public void AddDomainInvalidation(IotlbGather into) { }
}
