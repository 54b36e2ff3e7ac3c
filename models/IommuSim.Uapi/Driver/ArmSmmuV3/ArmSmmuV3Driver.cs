using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Driver.ArmSmmuV3;

/// <summary>
/// The host kernel's arm-smmu-v3 driver (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c) behind the iommufd
/// objects. Probe (arm_smmu_device_probe → arm_smmu_init_strtab, arm_smmu_device_reset): a stream table
/// in simulated memory, two-level with STRTAB_SPLIT = 8 as Linux uses it when SMMU_IDR0.ST_LEVEL allows
/// (linear on request), programmed into STRTAB_BASE; every known StreamID starts with an abort STE
/// (disable_bypass, arm_smmu_init_initial_stes); then CFGI_ALL + TLBI_NSNH_ALL + CMD_SYNC. Domains are
/// <see cref="ArmSmmuDomain"/>s; attach writes STEs and CDs (<c>ArmSmmuV3Driver.Attach.cs</c>); unmap
/// invalidates (<c>ArmSmmuV3Driver.Invalidation.cs</c>). Every wait is a CMD_SYNC completing in simulated time.
/// </summary>
public sealed partial class ArmSmmuV3Driver : IIommuDriver
{
    /// <summary>STRTAB_SPLIT: StreamID bits resolved by one level-2 stream table.</summary>
    public const int StrtabSplit = 8;
    /// <summary>StreamID bits (SMMU_IDR1.SIDSIZE): a PCI requester ID.</summary>
    public const int SidBits = 16;

    private readonly Dictionary<uint, ArmSmmuMaster> _masters = [];
    private readonly SortedSet<ushort> _freeAsids = [], _freeVmids = [];
    private ushort _nextAsid = 1, _nextVmid = 1;
    private readonly List<SmmuCommand> _cmds = [];

    public ArmSmmuV3Driver(ISmmuPort port, PlatformSpec spec, bool twoLevelStreamTable = true)
    {
        Port = port;
        Spec = spec;
        StreamTable = new StreamTable(port.Smmu.Memory, SidBits, twoLevelStreamTable ? StrtabSplit : null);
        port.Smmu.StreamTable = StreamTable; // SMMU_STRTAB_BASE / STRTAB_BASE_CFG
        foreach (var d in spec.Devices)
        {
            var m = new ArmSmmuMaster(d);
            _masters[m.Sid] = m;
            StreamTable.Install(m.Sid, AbortSte);
        }
        // arm_smmu_device_reset: invalidate any cached configuration and TLB entries before enabling.
        _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.CfgiSteRange, Range = 31 }); // CFGI_ALL
        _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.TlbiNsnhAll });
        Sync();
    }

    public string Architecture => "smmuv3";
    public ISmmuPort Port { get; }
    public PlatformSpec Spec { get; }
    public StreamTable StreamTable { get; }
    public ArmSmmuIdentityDomain Identity { get; } = new();
    IommuDomain IIommuDriver.Identity => Identity;
    public ArmSmmuBlockedDomain Blocked { get; } = new();

    public long FlushCount { get; private set; }
    public long DescriptorCount { get; private set; }

    public ArmSmmuMaster? Master(RequesterId rid) => _masters.GetValueOrDefault(rid.Value);

    private static StreamTableEntry AbortSte => new() { Valid = true, Config = SteConfig.Abort };

    // ---- domains (arm_smmu_domain_alloc_paging_flags, arm_smmu_domain_free_paging) -------------

    /// <summary>
    /// A NEST_PARENT domain is stage 2 with a VMID; every other paging domain stage 1 with an ASID
    /// ("prefer S1 if available"). Input size: 48 bits (VA_BITS / SMMU_IDR5.OAS), 39 for a 3-level
    /// request; 4 KiB granule.
    /// </summary>
    public ArmSmmuDomain AllocPagingDomain(bool nestParent, bool dirtyTracking, int? levels = null, PageSize? maxPageSize = null)
    {
        var stage = nestParent ? ArmSmmuStage.S2 : ArmSmmuStage.S1;
        int inputBits = levels == 3 ? 39 : 48;
        var table = new VmsaPageTable(Port.Smmu.Memory, stage == ArmSmmuStage.S1 ? SmmuStage.Stage1 : SmmuStage.Stage2,
            Granule.Size4K, inputBits, dirtyBitModifier: dirtyTracking);
        int maxShift = (maxPageSize ?? (Spec.Supports1G ? PageSize.Size1G : PageSize.Size2M)) switch
        {
            PageSize.Size4K => 12,
            PageSize.Size2M => 21,
            _ => 30,
        };
        ushort tag = stage == ArmSmmuStage.S1 ? Allocate(_freeAsids, ref _nextAsid, "ASID") : Allocate(_freeVmids, ref _nextVmid, "VMID");
        return new ArmSmmuDomain(this, stage, tag, table, maxShift, nestParent, dirtyTracking);
    }

    IommuPagingDomain IIommuDriver.AllocPagingDomain(bool nestParent, bool dirtyTracking, int? levels, PageSize? maxPageSize)
        => AllocPagingDomain(nestParent, dirtyTracking, levels, maxPageSize);

    /// <summary>
    /// arm_vsmmu_alloc_domain_nested's domain part: a nested domain from a guest STE (two dwords of
    /// IOMMU_HWPT_DATA_ARM_SMMUV3) over a NEST_PARENT stage-2 domain; EINVAL when the parent is not one.
    /// (The iommufd vIOMMU objects that call this are the vIOMMU work, Driver/ArmSmmuV3/ArmVsmmu*.)
    /// </summary>
    public Errno AllocNestedDomain(ArmSmmuDomain parent, ReadOnlySpan<ulong> guestSte, out ArmSmmuNestedDomain? domain)
    {
        domain = null;
        if (!parent.NestParent || parent.Stage != ArmSmmuStage.S2) return Errno.EINVAL;
        var rc = ArmSmmuNestedDomain.Validate(guestSte, out var kept);
        if (rc != Errno.OK) return rc;
        domain = new ArmSmmuNestedDomain(parent, kept);
        parent.AddChild(domain);
        return Errno.OK;
    }

    /// <summary>
    /// Frees a detached domain: its tag's TLB entries are invalidated (TLBI_NH_ASID / TLBI_S12_VMALL +
    /// CMD_SYNC, as arm_smmu_domain_free_paging → arm_smmu_tlb_inv_context) and the ASID/VMID reused.
    /// </summary>
    public void FreeDomain(IommuDomain d)
    {
        if (d.Freed || d is ArmSmmuIdentityDomain or ArmSmmuBlockedDomain) return;
        if (d.Attachments.Count != 0) throw new InvalidOperationException($"domain {d.DomainId} is still attached");
        if (d is ArmSmmuNestedDomain n)
        {
            // The guest's ASIDs live under the parent's VMID: TLBI_NH_ALL of that VMID drops them.
            n.Parent.RemoveChild(n);
            _cmds.Add(new SmmuCommand { Opcode = SmmuOpcode.TlbiNhAll, Vmid = n.Parent.Vmid });
            Sync();
            n.Freed = true;
            return;
        }
        if (d is not ArmSmmuDomain s) throw new ArgumentException($"not an arm-smmu-v3 domain: {d.GetType().Name}", nameof(d));
        if (s.Children.Count != 0) throw new InvalidOperationException($"domain {d.DomainId} still has nested children");
        AddInvalidateAll(s);
        Sync();
        s.Freed = true;
        (s.Stage == ArmSmmuStage.S1 ? _freeAsids : _freeVmids).Add(s.DomainId);
    }

    private static ushort Allocate(SortedSet<ushort> free, ref ushort next, string what)
    {
        if (free.Count > 0)
        {
            ushort v = free.Min;
            free.Remove(v);
            return v;
        }
        if (next == ushort.MaxValue) throw new InvalidOperationException($"{what}s exhausted");
        return next++;
    }

    // ---- dirty tracking (arm_smmu_dirty_ops) ----------------------------------------------------

    /// <summary>arm_smmu_set_dirty_tracking: nothing to program, HTTU (CD.HD / STE.S2HD) is on from allocation.</summary>
    public void SetDirtyTracking(IommuPagingDomain domain, bool enable) => domain.DirtyTracking = enable;

    /// <summary>arm_smmu_read_and_clear_dirty (io-pgtable-arm): reads each leaf's dirty state (DBM set, AP[2]/S2AP
    /// writable); cleared leaves are invalidated afterwards so the next write walks and sets them again.</summary>
    public void ReadAndClearDirty(IommuPagingDomain domain, IReadOnlyList<(ulong Iova, ulong Last)> spans, bool noClear, Action<ulong, ulong> setDirty)
    {
        var d = (ArmSmmuDomain)domain;
        bool cleared = false;
        foreach (var (first, last) in spans)
        {
            ulong va = first;
            while (va <= last && va <= d.Table.MaxInput)
            {
                ulong next;
                if (d.Table.Translate(va) is { } t)
                {
                    ulong size = 1UL << t.LeafShift, leaf = va & ~(size - 1);
                    bool dirty = noClear ? IsDirty(d, va) : d.Table.ReadAndClearDirty(va);
                    if (dirty)
                    {
                        setDirty(leaf, size);
                        cleared |= !noClear;
                    }
                    next = leaf + size;
                }
                else next = (va & ~0xFFFUL) + 0x1000;
                if (next <= va) break;
                va = next;
            }
        }
        if (cleared)
        {
            AddInvalidateAll(d);
            Sync();
        }
    }

    private bool IsDirty(ArmSmmuDomain d, ulong va)
    {
        var (entry, _) = d.Table.FindLeaf(va);
        return entry != 0 && VmsaDescriptor.IsDirty(d.Table.Stage, Port.Smmu.Memory.ReadU64(entry));
    }

    /// <summary>Sends the queued commands with a CMD_SYNC and waits for it (arm_smmu_cmdq_issue_cmdlist(sync = true)).</summary>
    private void Sync()
    {
        DescriptorCount += _cmds.Count;
        FlushCount++;
        if (_deferInto is not null)
        {
            // Gathered for a driver CPU that submits it with its CMD_SYNC and waits in simulated time (SmmuIotlbGather).
            _deferInto.AddRange(_cmds);
            _cmds.Clear();
            return;
        }
        Port.SubmitAndSync(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_cmds));
        _cmds.Clear();
    }
}
