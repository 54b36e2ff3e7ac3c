namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_veventq (eventq.c, driver.c): a vIOMMU's queue of events of one type, read by user space
/// through its fd as struct iommufd_vevent_header + the type's record. At most <see cref="Depth"/> events wait;
/// one more overflows into the single lost-events header (IOMMU_VEVENTQ_FLAG_LOST_EVENTS, no data), which sits
/// at the tail of the list and carries the sequence index the next event would have had. Sequence indexes
/// run 0 … INT_MAX and wrap to 0, so a gap in them tells user space how many events it lost.
/// </summary>
public sealed class Veventq : IommufdObject
{
    // The deliver list: events in order; the lost-events header is represented by a null Data.
    private readonly LinkedList<(uint Sequence, byte[]? Data)> _deliver = new();
    private LinkedListNode<(uint Sequence, byte[]? Data)>? _lostHeader;
    private uint _sequence;

    internal Veventq(IommufdContext ictx, Viommu viommu, uint type, uint depth) : base(ictx)
    {
        Viommu = viommu;
        VeventqType = type;
        Depth = depth;
    }

    public override IommufdObjectType Type => IommufdObjectType.Veventq;

    public Viommu Viommu { get; }

    /// <summary>veventq->type (enum iommu_veventq_type).</summary>
    public uint VeventqType { get; }

    /// <summary>veventq->depth: events that can wait before new ones are lost.</summary>
    public uint Depth { get; }

    /// <summary>veventq->num_events: events waiting (the lost-events header not counted).</summary>
    public uint NumEvents { get; private set; }

    /// <summary>out_veventq_fd.</summary>
    public int Fd { get; internal set; }

    /// <summary>Events lost to overflow since allocation (a statistic; the kernel keeps only the header).</summary>
    public long Lost { get; private set; }

    /// <summary>iommufd_viommu_report_event + iommufd_vevent_handler: queue one record, or the lost-events header when full.</summary>
    internal void Report(ReadOnlySpan<byte> data)
    {
        LinkedListNode<(uint Sequence, byte[]? Data)> node;
        if (NumEvents == Depth)
        {
            Lost++;
            node = _lostHeader ?? new LinkedListNode<(uint Sequence, byte[]? Data)>((0, null));
        }
        else
        {
            node = new LinkedListNode<(uint Sequence, byte[]? Data)>((0, data.ToArray()));
            NumEvents++;
        }
        // Remove the lost-events header from the tail and add the new node (which may be that header again,
        // for a sequence update).
        if (_lostHeader is not null && _lostHeader.List is not null && ReferenceEquals(_deliver.Last, _lostHeader)) _deliver.Remove(_lostHeader);
        node.Value = (_sequence, node.Value.Data);
        _deliver.AddLast(node);
        if (node.Value.Data is null) _lostHeader = node;
        _sequence = (_sequence + 1) & int.MaxValue;
    }

    /// <summary>
    /// iommufd_veventq_fops_read: as many whole vEVENTs as fit in <paramref name="count"/> bytes (a header is 8 bytes,
    /// a record follows it unless the header is the lost-events one). An event that does not fit stays queued; a read
    /// that fits nothing returns 0 bytes. A non-zero file position is ESPIPE.
    /// </summary>
    public Errno Read(ulong count, ulong ppos, List<Vevent> events, out ulong done)
    {
        events.Clear();
        done = 0;
        if (ppos != 0) return Errno.ESPIPE;
        while (_deliver.First is { } cur)
        {
            bool lost = cur.Value.Data is null;
            if (done >= count || IommufdVeventHeader.Size > count - done) break;
            ulong len = (ulong)IommufdVeventHeader.Size + (ulong)(cur.Value.Data?.Length ?? 0);
            if (!lost && len > count - done) break;
            _deliver.RemoveFirst();
            events.Add(new Vevent(new IommufdVeventHeader(lost ? IommuVeventqFlag.LOST_EVENTS : 0, cur.Value.Sequence), cur.Value.Data ?? []));
            done += len;
            if (!lost) NumEvents--;
        }
        return Errno.OK;
    }

    /// <summary>iommufd_veventq_destroy/abort: pending events are freed, the vIOMMU's list and reference dropped.</summary>
    internal override void Release()
    {
        _deliver.Clear();
        NumEvents = 0;
        Viommu.RemoveVeventq(this);
        Viommu.Put();
    }
}
