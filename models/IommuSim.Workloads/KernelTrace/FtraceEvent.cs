namespace IommuSim.Workloads.KernelTrace;

/// <summary>The kernel tracepoints a kernel trace replays or uses (anything else is counted by name).</summary>
public enum FtraceEventKind : byte
{
    /// <summary><c>iommu:map</c> (include/trace/events/iommu.h, fired by iommu_map_nosync on success).</summary>
    Map,
    /// <summary><c>iommu:unmap</c> (fired by __iommu_unmap with the size asked and the size unmapped).</summary>
    Unmap,
    /// <summary><c>intel_iommu:qi_submit</c> (drivers/iommu/intel/trace.h, one per descriptor qi_submit_sync queues; its wait descriptor is not traced).</summary>
    QiSubmit,
    /// <summary><c>iommu:io_page_fault</c> (fired by report_iommu_fault).</summary>
    IoPageFault,
    /// <summary>Any other event: counted by name, not replayed.</summary>
    Other,
}

/// <summary>Queued-invalidation descriptor types as <c>qi_submit</c> prints them (__print_symbolic of qw0 &amp; 0xf).</summary>
public enum QiType : byte
{
    CcInv, IotlbInv, DevTlbInv, IecInv, InvWait, PIotlbInv, PcInv, PDevTlbInv, PageGrpResp, Other,
}

/// <summary>One parsed line of ftrace text output (tracefs <c>trace</c> file or <c>trace-cmd report</c>).</summary>
public struct FtraceEvent
{
    public FtraceEventKind Kind;
    /// <summary>Timestamp in ps (ftrace prints seconds with µs or ns decimals).</summary>
    public long TimePs;
    /// <summary>The CPU the event was recorded on (<c>[003]</c>).</summary>
    public int Cpu;
    public int Line;
    /// <summary>map/unmap/io_page_fault: the IOVA.</summary>
    public ulong Iova;
    /// <summary>map: the physical address (informational; the replay takes buffers from the design's pool).</summary>
    public ulong Paddr;
    /// <summary>map: bytes mapped; unmap: bytes asked to unmap.</summary>
    public ulong Size;
    /// <summary>unmap: bytes the kernel actually unmapped (less than Size when it met a hole).</summary>
    public ulong UnmappedSize;
    /// <summary>io_page_fault: IOMMU_FAULT_WRITE (flags bit 0) was set.</summary>
    public bool FaultWrite;
    public QiType Qi;
    public ulong Qw0, Qw1;
}
