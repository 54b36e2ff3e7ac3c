using IommuSim.Engine.Units;
using IommuSim.Hardware.Iommu.Tables;

namespace IommuSim.Hardware.Devices;

/// <summary>One PCIe device of the platform (config list <c>devices</c>).</summary>
public sealed class DeviceOptions
{
    public string Name { get; set; } = "";
    /// <summary>PCI address, "0000:03:00.0".</summary>
    public string Bdf { get; set; } = "";
    /// <summary>IOMMU group; devices sharing a number share a group (default: own group, numbered from 0 in list order).</summary>
    public int? IommuGroup { get; set; }
    /// <summary>Requests in flight at once (tags).</summary>
    public int MaxOutstanding { get; set; } = 32;
    /// <summary>PASID capability width (0 = no PASID support).</summary>
    public int PasidBits { get; set; } = 20;
    public AtsOptions Ats { get; set; } = new();
    public AttachOptions Attach { get; set; } = new();
    /// <summary>IOVA ranges the device's driver maps before the workload runs.</summary>
    public List<DmaRegionOptions> DmaRegions { get; set; } = [];

    public RequesterId RequesterId => RequesterId.TryParse(Bdf, out var r) ? r : default;

    public static readonly string[] AttachVia = ["kernel", "iommufd", "vfio-container"];

    public void Validate(string path, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(Name)) errors.Add($"{path}:name: a device needs a name");
        if (!RequesterId.TryParse(Bdf, out _)) errors.Add($"{path}:bdf = {Bdf}: must be a PCI address like 0000:03:00.0");
        if (MaxOutstanding is < 1 or > 65536) errors.Add($"{path}:maxOutstanding = {MaxOutstanding}: must be in [1, 65536]");
        if (PasidBits is < 0 or > 20) errors.Add($"{path}:pasidBits = {PasidBits}: must be in [0, 20]");
        if (IommuGroup is int g && g < 0) errors.Add($"{path}:iommuGroup = {g}: must be >= 0");
        Ats.Validate($"{path}:ats", errors);
        if (Attach.DemandPaging && !(Ats.Enabled && Ats.Pri)) errors.Add($"{path}:attach:demandPaging = true: needs ats:enabled = true and ats:pri = true (page requests)");
        if (!AttachVia.Contains(Attach.Via)) errors.Add($"{path}:attach:via = {Attach.Via}: allowed values are {string.Join(", ", AttachVia)}");
        if (Attach.Pasid is uint p && (PasidBits == 0 || p >= 1u << PasidBits)) errors.Add($"{path}:attach:pasid = {p}: must be below 2^pasidBits ({(PasidBits == 0 ? "device has no PASID support" : (1u << PasidBits).ToString(System.Globalization.CultureInfo.InvariantCulture))})");
        for (int i = 0; i < DmaRegions.Count; i++)
        {
            var r = DmaRegions[i];
            string rp = $"{path}:dmaRegions:{i}";
            if (r.Bytes.Bytes <= 0) errors.Add($"{rp}:bytes = {r.Bytes}: must be > 0");
            if ((r.Iova.Value & 0xFFF) != 0) errors.Add($"{rp}:iova = {r.Iova}: must be 4 KiB aligned");
            if ((r.Bytes.Bytes & 0xFFF) != 0) errors.Add($"{rp}:bytes = {r.Bytes}: must be a multiple of 4 KiB");
            if (r.Iova.Value + (ulong)Math.Max(0, r.Bytes.Bytes) < r.Iova.Value) errors.Add($"{rp}: iova + bytes overflows");
        }
    }
}

public sealed class AtsOptions
{
    public bool Enabled { get; set; }
    /// <summary>Device TLB (ATC) entries (fully associative, LRU).</summary>
    public int Entries { get; set; } = 32;
    /// <summary>The device answers translation faults with page requests (PRI) instead of failing.</summary>
    public bool Pri { get; set; }

    public void Validate(string path, List<string> errors)
    {
        if (Entries is < 1 or > 1 << 20) errors.Add($"{path}:entries = {Entries}: must be in [1, 1048576]");
        if (Pri && !Enabled) errors.Add($"{path}:pri = true: PRI needs ats:enabled = true");
    }
}

public sealed class AttachOptions
{
    /// <summary><c>kernel</c> (host DMA API), <c>iommufd</c> (VFIO cdev), <c>vfio-container</c> (legacy VFIO).</summary>
    public string Via { get; set; } = "iommufd";
    /// <summary>VM the device is assigned to (nested and shadow designs).</summary>
    public string? Vm { get; set; }
    /// <summary>PASID the device's DMA uses (null: requests without PASID, RID_PASID).</summary>
    public uint? Pasid { get; set; }
    /// <summary>The DMA regions are not mapped up front: the first touch of each page faults, the device
    /// sends a PRI page request, and the host's I/O page-fault handler maps the page and answers
    /// (needs ats.enabled and ats.pri).</summary>
    public bool DemandPaging { get; set; }
}

public sealed class DmaRegionOptions
{
    public Address Iova { get; set; }
    public ByteSize Bytes { get; set; }
}
