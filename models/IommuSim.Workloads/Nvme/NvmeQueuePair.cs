using IommuSim.Hardware.Devices;
using IommuSim.Workloads.DeviceModels;

namespace IommuSim.Workloads.Nvme;

/// <summary>
/// One NVMe submission/completion queue pair in DMA-able memory (SQ entries of 64 bytes, CQ
/// entries of 16, one PRP-list slot per command id) and the per-command state both the host and
/// the controller see. The layout: the data window [iova, iova + workingSetBytes), then (default)
/// the SQ, the CQ and the PRP lists, each 4 KiB aligned.
/// </summary>
internal sealed class NvmeQueuePair
{
    public NvmeQueuePair(WorkloadOptions options, DeviceOptions device)
    {
        Depth = options.Nvme.QueueDepth;
        IoBytes = (int)options.Bytes.Bytes;
        PrpSlotBytes = PrpSlotBytesFor(IoBytes);
        var layout = Layout(options, device);
        DataIova = layout.Data;
        SqIova = layout.Sq;
        CqIova = layout.Cq;
        PrpListIova = layout.Prp;
        SubmitPs = new long[Depth];
        Measured = new bool[Depth];
        IsRead = new bool[Depth];
        Faulted = new bool[Depth];
        DataIovaOf = new ulong[Depth];
        SqCid = new int[Depth];
    }

    public readonly int Depth;
    public readonly int IoBytes;
    public readonly int PrpSlotBytes;
    /// <summary>Start of the data window (recycle).</summary>
    public readonly ulong DataIova;
    public readonly ulong SqIova;
    public readonly ulong CqIova;
    /// <summary>PRP lists, one slot per command id.</summary>
    public readonly ulong PrpListIova;

    // Per command id.
    public readonly long[] SubmitPs;
    public readonly bool[] Measured;
    public readonly bool[] IsRead;
    public readonly bool[] Faulted;
    public readonly ulong[] DataIovaOf;
    /// <summary>The command id in each SQ slot.</summary>
    public readonly int[] SqCid;

    public long SqTail;        // SQ entries the host has written (doorbell)
    public long SqFetchIssued; // SQ entries the controller has fetched
    public long CqTail;        // CQ entries the controller has written

    /// <summary>Commands submitted and not yet completed.</summary>
    public readonly TimeAverage Outstanding = new();

    /// <summary>Data pages of command <paramref name="cid"/>'s buffer.</summary>
    public int Pages(int cid) => NvmeOptions.Pages(DataIovaOf[cid], IoBytes);

    private static int PrpSlotBytesFor(int ioBytes)
    {
        int entries = ioBytes / NvmeOptions.PageBytes; // pages after the first, allowing one extra for an unaligned buffer
        int slot = 64;
        while (slot < entries * 8) slot <<= 1;
        return slot;
    }

    private readonly record struct QueueLayout(ulong Data, ulong Sq, ulong Cq, ulong Prp, ulong End);

    private static QueueLayout Layout(WorkloadOptions o, DeviceOptions d)
    {
        var n = o.Nvme;
        ulong data = o.Iova?.Value ?? (d.DmaRegions.Count > 0 ? d.DmaRegions[0].Iova.Value : 0);
        ulong q = n.QueueIova?.Value ?? DeviceModelWorkload.AlignUp(data + (ulong)Math.Max(0, o.WorkingSetBytes.Bytes), 4096);
        ulong qd = (ulong)Math.Clamp(n.QueueDepth, 1, 1024);
        ulong cq = q + DeviceModelWorkload.AlignUp(qd * NvmeOptions.SqEntryBytes, 4096);
        ulong prp = cq + DeviceModelWorkload.AlignUp(qd * NvmeOptions.CqEntryBytes, 4096);
        ulong end = prp + DeviceModelWorkload.AlignUp(qd * (ulong)PrpSlotBytesFor((int)Math.Clamp(o.Bytes.Bytes, NvmeOptions.PageBytes, 2 << 20)), 4096);
        return new QueueLayout(data, q, cq, prp, end);
    }

    /// <summary>The queues and PRP lists must lie inside the device's dmaRegions, clear of the data window.</summary>
    public static void CheckLayout(WorkloadOptions o, DeviceOptions d, string path, List<string> errors)
    {
        if (d.DmaRegions.Count == 0)
        {
            errors.Add($"{path}:device = {d.Name}: an NVMe model needs the device to have a dmaRegion for its queues");
            return;
        }
        var l = Layout(o, d);
        ulong dataEnd = l.Data + (ulong)Math.Max(0, o.WorkingSetBytes.Bytes);
        if (!DeviceModelWorkload.InsideRegions(d, l.Sq, l.End - l.Sq))
            errors.Add($"{path}:nvme:queueIova = 0x{l.Sq:x}: the queues and PRP lists [0x{l.Sq:x}, 0x{l.End:x}) must lie inside one of {d.Name}'s dmaRegions (default: right after the data window)");
        else if (l.Sq < dataEnd && l.Data < l.End)
            errors.Add($"{path}:nvme:queueIova = 0x{l.Sq:x}: the queues [0x{l.Sq:x}, 0x{l.End:x}) overlap the data window [0x{l.Data:x}, 0x{dataEnd:x})");
        if (o.Nvme.BufferPolicy == "recycle" && !DeviceModelWorkload.InsideRegions(d, l.Data, dataEnd - l.Data))
            errors.Add($"{path}:workingSetBytes = {o.WorkingSetBytes}: the data window [0x{l.Data:x}, 0x{dataEnd:x}) must lie inside one of {d.Name}'s dmaRegions");
    }
}
