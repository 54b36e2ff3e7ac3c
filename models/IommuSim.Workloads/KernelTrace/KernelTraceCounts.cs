namespace IommuSim.Workloads.KernelTrace;

/// <summary>What a kernel trace contains, counted as it streams by (summary <c>devices.&lt;name&gt;.kernelTrace.trace.*</c>).</summary>
public sealed class KernelTraceCounts
{
    public long Lines;
    public long Maps;
    public long Unmaps;
    public long MappedBytes;
    public long UnmappedBytes;
    public long PageFaults;
    /// <summary>Events ftrace reports as lost (<c>CPU:N [LOST M EVENTS]</c>): the map/unmap stream has gaps.</summary>
    public long LostEvents;
    public readonly long[] Qi = new long[(int)QiType.Other + 1];
    /// <summary>iotlb_inv by granularity (qw0 bits 5:4: 1 global, 2 domain-selective, 3 page-selective).</summary>
    public long IotlbGlobal, IotlbDomain, IotlbPage;
    /// <summary>Events of other types, by name (never silently dropped).</summary>
    public readonly Dictionary<string, long> Unknown = new(StringComparer.Ordinal);
    public long FirstTimePs = -1;
    public long LastTimePs = -1;

    /// <summary>IOTLB invalidation descriptors (iotlb_inv + p_iotlb_inv), as the simulator's invalidation.iotlbDescriptors counts them.</summary>
    public long IotlbInvalidations => Qi[(int)QiType.IotlbInv] + Qi[(int)QiType.PIotlbInv];
    /// <summary>Device-TLB invalidation descriptors (dev_tlb_inv + p_dev_tlb_inv).</summary>
    public long DeviceTlbInvalidations => Qi[(int)QiType.DevTlbInv] + Qi[(int)QiType.PDevTlbInv];
    public long UnknownEvents => Unknown.Values.Sum();

    /// <summary>"strict" when unmaps were invalidated page by page, "lazy" when by domain-wide flushes, else "unknown".</summary>
    public string RecordedMode
        => IotlbPage > 0 && IotlbDomain + IotlbGlobal == 0 ? "strict"
         : IotlbDomain + IotlbGlobal > 0 && IotlbPage == 0 ? "lazy"
         : "unknown";

    public static string QiName(QiType t) => t switch
    {
        QiType.CcInv => "cc_inv",
        QiType.IotlbInv => "iotlb_inv",
        QiType.DevTlbInv => "dev_tlb_inv",
        QiType.IecInv => "iec_inv",
        QiType.InvWait => "inv_wait",
        QiType.PIotlbInv => "p_iotlb_inv",
        QiType.PcInv => "pc_inv",
        QiType.PDevTlbInv => "p_dev_tlb_inv",
        QiType.PageGrpResp => "page_grp_resp",
        _ => "other",
    };

    public void Add(in FtraceEvent e)
    {
        if (FirstTimePs < 0) FirstTimePs = e.TimePs;
        LastTimePs = e.TimePs;
        switch (e.Kind)
        {
            case FtraceEventKind.Map: Maps++; MappedBytes += (long)e.Size; break;
            case FtraceEventKind.Unmap: Unmaps++; UnmappedBytes += (long)e.UnmappedSize; break;
            case FtraceEventKind.IoPageFault: PageFaults++; break;
            case FtraceEventKind.QiSubmit:
                Qi[(int)e.Qi]++;
                if (e.Qi == QiType.IotlbInv)
                {
                    switch ((e.Qw0 >> 4) & 3)
                    {
                        case 1: IotlbGlobal++; break;
                        case 2: IotlbDomain++; break;
                        case 3: IotlbPage++; break;
                    }
                }
                else if (e.Qi == QiType.PIotlbInv)
                {
                    // PASID-based IOTLB: 2 = all pages of the PASID (QI_GRAN_NONG_PASID), 3 = page-selective (QI_GRAN_PSI_PASID).
                    if (((e.Qw0 >> 4) & 3) == 3) IotlbPage++; else IotlbDomain++;
                }
                break;
        }
    }

    /// <summary>Summary figures, keys relative to <c>kernelTrace.trace</c>.</summary>
    public IEnumerable<KeyValuePair<string, double>> Summary()
    {
        yield return new("lines", Lines);
        yield return new("spanUs", FirstTimePs < 0 ? 0 : (LastTimePs - FirstTimePs) / 1e6);
        yield return new("maps", Maps);
        yield return new("unmaps", Unmaps);
        yield return new("mappedBytes", MappedBytes);
        yield return new("unmappedBytes", UnmappedBytes);
        yield return new("iotlbInvalidations", IotlbInvalidations);
        yield return new("iotlbPageSelective", IotlbPage);
        yield return new("iotlbDomainSelective", IotlbDomain);
        yield return new("iotlbGlobal", IotlbGlobal);
        yield return new("deviceTlbInvalidations", DeviceTlbInvalidations);
        for (int i = 0; i < Qi.Length; i++) yield return new($"qiSubmit.{QiName((QiType)i)}", Qi[i]);
        yield return new("pageFaults", PageFaults);
        yield return new("lostEvents", LostEvents);
        yield return new("unknownEvents", UnknownEvents);
        foreach (var (name, n) in Unknown.OrderBy(kv => kv.Key, StringComparer.Ordinal)) yield return new($"unknownEventsByName.{name}", n);
    }
}
