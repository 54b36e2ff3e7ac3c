using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Uapi.Iommufd;

/// <summary>
/// struct iommufd_fault (FAULT_QUEUE_ALLOC): receives the I/O page-fault groups of the HWPTs
/// allocated with it. read() returns whole groups; each group gets a cookie the response must
/// quote. Detach or replace answers a device's outstanding groups INVALID.
/// </summary>
public sealed class FaultQueue : IommufdObject
{
    private readonly Dictionary<(ushort Rid, uint Pasid, int Group), List<IommuHwptPgfault>> _partial = [];
    private readonly Queue<List<IommuHwptPgfault>> _deliver = new();
    private readonly Dictionary<uint, (IommufdDevice Dev, uint Pasid, int Group)> _response = [];
    private uint _nextCookie = 1;

    internal FaultQueue(IommufdContext ictx) : base(ictx) { }

    public override IommufdObjectType Type => IommufdObjectType.Fault;

    /// <summary>The fd user space reads and writes (out_fault_fd).</summary>
    public int Fd { get; internal set; }

    public int PendingGroups => _deliver.Count;
    public int AwaitingResponse => _response.Count;

    /// <summary>iommufd_fault_iopf_handler: one page request; a group is complete with its last request.</summary>
    internal void Deliver(IommufdDevice dev, in PageRequest pr)
    {
        var key = (pr.RequesterId, pr.Pasid, pr.PageGroupIndex);
        if (!_partial.TryGetValue(key, out var list)) _partial[key] = list = [];
        uint perm = ((pr.Access & Access.Read) != 0 ? IommuHwptPgfault.PERM_READ : 0) | ((pr.Access & Access.Write) != 0 ? IommuHwptPgfault.PERM_WRITE : 0);
        list.Add(new IommuHwptPgfault
        {
            flags = (pr.HasPasid ? IommuHwptPgfault.FLAGS_PASID_VALID : 0) | (pr.LastInGroup ? IommuHwptPgfault.FLAGS_LAST_PAGE : 0),
            dev_id = dev.Id,
            pasid = pr.Pasid,
            grpid = (uint)pr.PageGroupIndex,
            perm = perm,
            addr = pr.Address & ~0xFFFUL,
            length = 0, // iommufd_compose_fault_message reports no length
        });
        if (!pr.LastInGroup) return;
        _partial.Remove(key);
        _deliver.Enqueue(list);
    }

    /// <summary>read(): whole groups that fit in <paramref name="maxEntries"/>; each gets a cookie.</summary>
    public List<IommuHwptPgfault> Read(int maxEntries)
    {
        var result = new List<IommuHwptPgfault>();
        while (_deliver.Count > 0 && result.Count + _deliver.Peek().Count <= maxEntries)
        {
            var group = _deliver.Dequeue();
            uint cookie = _nextCookie++;
            var first = group[0];
            var dev = (IommufdDevice)Context.Lookup(first.dev_id)!;
            _response[cookie] = (dev, (first.flags & IommuHwptPgfault.FLAGS_PASID_VALID) != 0 ? first.pasid : IommufdContext.NoPasid, (int)first.grpid);
            foreach (var f in group) { f.cookie = cookie; result.Add(f); }
        }
        return result;
    }

    /// <summary>write() of one struct iommu_hwpt_page_response.</summary>
    public Errno Respond(uint cookie, uint code)
    {
        if (code != IommuHwptPageResponse.CODE_SUCCESS && code != IommuHwptPageResponse.CODE_INVALID) return Errno.EINVAL;
        if (!_response.Remove(cookie, out var r)) return Errno.EINVAL;
        Context.Kernel.Driver.PageResponse(r.Dev.Spec, r.Pasid, r.Group, code == IommuHwptPageResponse.CODE_SUCCESS ? PageResponseCode.Success : PageResponseCode.Invalid);
        return Errno.OK;
    }

    /// <summary>iommufd_auto_response_faults: everything outstanding for (device, PASID) is answered INVALID.</summary>
    internal void AutoRespond(IommufdDevice dev, uint pasid)
    {
        foreach (var (cookie, r) in _response.Where(kv => kv.Value.Dev == dev && kv.Value.Pasid == pasid).ToList())
        {
            _response.Remove(cookie);
            Context.Kernel.Driver.PageResponse(dev.Spec, pasid, r.Group, PageResponseCode.Invalid);
        }
        var stale = _deliver.Where(g => g[0].dev_id == dev.Id && PasidOf(g[0]) == pasid).ToList();
        if (stale.Count == 0) return;
        var keep = _deliver.Where(g => !stale.Contains(g)).ToList();
        _deliver.Clear();
        foreach (var g in keep) _deliver.Enqueue(g);
        foreach (var g in stale) Context.Kernel.Driver.PageResponse(dev.Spec, pasid, (int)g[0].grpid, PageResponseCode.Invalid);
    }

    private static uint PasidOf(IommuHwptPgfault f) => (f.flags & IommuHwptPgfault.FLAGS_PASID_VALID) != 0 ? f.pasid : IommufdContext.NoPasid;

    internal override void Release()
    {
        foreach (var (_, r) in _response) Context.Kernel.Driver.PageResponse(r.Dev.Spec, r.Pasid, r.Group, PageResponseCode.Invalid);
        _response.Clear();
        _deliver.Clear();
        _partial.Clear();
    }
}
