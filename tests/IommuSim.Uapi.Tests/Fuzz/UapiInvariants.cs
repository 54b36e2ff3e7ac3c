using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Iopt;
using IommuSim.Uapi.Memory;

namespace IommuSim.Uapi.Tests.Fuzz;

/// <summary>
/// What must hold between any two uAPI calls, derived from the objects themselves (not from a second model):
/// reference counts, IOAS areas against the domains' page tables, and the pinned-page accounting.
/// </summary>
internal static class UapiInvariants
{
    private const ulong Page = 0x1000;

    public static void Check(Sim s, Func<IoptArea, ulong, ulong> expectedPa, Action<bool, string> require)
    {
        var ctx = s.Ctx;
        var objects = ctx.Objects.ToList();
        CheckReferences(objects, require);
        foreach (var ioas in objects.OfType<Ioas>()) CheckIoas(ioas, objects, expectedPa, require);
        CheckPinned(s.Process.Mm.Memlock, objects, require);
    }

    /// <summary>Each object's user count is exactly the references the others hold (iommufd_object users).</summary>
    internal static void CheckReferences(List<IommufdObject> objects, Action<bool, string> require)
    {
        var expected = objects.ToDictionary(o => o, _ => 0);
        void Ref(IommufdObject o, string by)
        {
            require(expected.ContainsKey(o), $"{by} holds {o.Type} {o.Id}, which is not in the object table");
            if (expected.ContainsKey(o)) expected[o]++;
        }
        foreach (var o in objects)
        {
            switch (o)
            {
                case HwptPaging p:
                    Ref(p.Ioas, $"HWPT {p.Id}");
                    if (p.Fault is { } pf) Ref(pf, $"HWPT {p.Id}");
                    require(p.Ioas.HwptList.Contains(p) && p.Ioas.Iopt.Domains.Contains(p.PagingDomain), $"HWPT {p.Id} is not on its IOAS");
                    break;
                case HwptNested n:
                    Ref(n.Viommu is null ? n.Parent : n.Viommu, $"nested HWPT {n.Id}");
                    if (n.Fault is { } nf) Ref(nf, $"nested HWPT {n.Id}");
                    break;
                case Viommu v:
                    Ref(v.Hwpt, $"vIOMMU {v.Id}");
                    break;
                case Vdevice vd:
                    Ref(vd.Viommu, $"vDEVICE {vd.Id}");
                    Ref(vd.Device, $"vDEVICE {vd.Id}");
                    require(ReferenceEquals(vd.Device.Vdevice, vd) && vd.Viommu.Vdevs.GetValueOrDefault(vd.VirtId) == vd, $"vDEVICE {vd.Id} is not in its vIOMMU and device");
                    break;
                case Veventq q:
                    Ref(q.Viommu, $"vEVENTQ {q.Id}");
                    require(q.NumEvents <= q.Depth && q.Viommu.FindVeventq(q.VeventqType) == q, $"vEVENTQ {q.Id}: {q.NumEvents} events of depth {q.Depth}, or not its vIOMMU's");
                    break;
                case HwQueue hq:
                    Ref(hq.Viommu, $"HW queue {hq.Id}");
                    if (hq.Access is { } ia) Ref(ia.Ioas, $"HW queue {hq.Id}'s internal access");
                    // iommufd_hw_queue_depend: a Tegra241 LVCMDQ holds the one below it.
                    if (hq.DriverData is Driver.ArmSmmuV3.Tegra241Vcmdq { Prev: { } prev }) Ref(prev.HwQueue, $"HW queue {hq.Id}");
                    break;
                case IommufdAccess a:
                    Ref(a.Ioas, $"access {a.Id}");
                    break;
                case IommufdDevice d:
                    expected[d]++; // the binding driver's reference
                    foreach (uint pasid in d.Group.AttachedPasids)
                        if (d.Group.Get(pasid) is { } at && at.Devices.Contains(d)) Ref(at.Hwpt, $"device {d.Id} pasid {pasid}");
                    break;
            }
        }
        // iommufd_eventq_init: an open fault / vEVENTQ fd holds its object.
        foreach (var ctx in objects.Select(o => o.Context).Distinct())
            foreach (var f in ctx.EventqFiles)
                if (!f.Queue.Destroyed) Ref(f.Queue, "its open fd");
        foreach (var (o, n) in expected)
        {
            require(o.Users == n, $"{o.Type} {o.Id}: {o.Users} users, but {n} references exist");
            require(o is not HwptPaging { AutoDomain: true } || n > 0, $"auto HWPT {o.Id} outlived its last attachment");
        }
    }

    /// <summary>
    /// Areas are sorted and disjoint; with a domain attached every area is pinned and mapped in every domain at the
    /// pages behind it, with its permission; right after an area (when no other area is there) nothing is mapped.
    /// </summary>
    private static void CheckIoas(Ioas ioas, List<IommufdObject> objects, Func<IoptArea, ulong, ulong> expectedPa, Action<bool, string> require)
    {
        var iopt = ioas.Iopt;
        var areas = iopt.Areas;
        for (int i = 1; i < areas.Count; i++)
            require(areas[i - 1].Last < areas[i].Iova, $"IOAS {ioas.Id}: areas 0x{areas[i - 1].Iova:x} and 0x{areas[i].Iova:x} overlap or are unsorted");
        foreach (var a in areas)
        {
            require(a.InDomains == (iopt.Domains.Count > 0), $"IOAS {ioas.Id}: area 0x{a.Iova:x} in-domain state {a.InDomains} with {iopt.Domains.Count} domains");
            require(a.NumAccesses >= 0, $"IOAS {ioas.Id}: area 0x{a.Iova:x} has {a.NumAccesses} access pins");
            require(((a.Iova | a.Length) & (iopt.IovaAlignment - 1)) == 0, $"IOAS {ioas.Id}: area 0x{a.Iova:x}+0x{a.Length:x} breaks alignment 0x{iopt.IovaAlignment:x}");
            if (iopt.Domains.Count == 0) continue;
            require(a.Pages.PinnedPages > 0, $"IOAS {ioas.Id}: area 0x{a.Iova:x} is in a domain but its pages are not pinned");
            foreach (IommuSim.Uapi.Driver.VtdPagingDomain d in iopt.Domains)
            {
                foreach (ulong probe in new[] { a.Iova, a.Iova + ((a.Length - 1) & ~(Page - 1)) })
                {
                    bool mapped = d.Table.TryTranslate(probe, out ulong pa, out var acc, out _);
                    require(mapped, $"IOAS {ioas.Id}: area 0x{a.Iova:x} page 0x{probe:x} missing from domain {d.DomainId}");
                    require(!mapped || pa == expectedPa(a, probe), $"IOAS {ioas.Id}: domain {d.DomainId} maps 0x{probe:x} to 0x{pa:x}, the area's page is 0x{expectedPa(a, probe):x}");
                    require(!mapped || acc == a.Prot, $"IOAS {ioas.Id}: domain {d.DomainId} gives 0x{probe:x} {acc}, the area {a.Prot}");
                }
                ulong after = a.Last + 1;
                if (after != 0 && iopt.FirstArea(after, after) is null && after <= d.Table.MaxAddress)
                    require(!d.Table.TryTranslate(after, out _, out _, out _), $"IOAS {ioas.Id}: domain {d.DomainId} still maps 0x{after:x} past area 0x{a.Iova:x}");
                ulong before = a.Iova - Page;
                if (a.Iova >= Page && iopt.FirstArea(before, before) is null)
                    require(!d.Table.TryTranslate(before, out _, out _, out _), $"IOAS {ioas.Id}: domain {d.DomainId} maps 0x{before:x} before area 0x{a.Iova:x}");
            }
        }
        // The 2 MiB IOVA slots the fuzzer maps at: an unmapped slot is unmapped in every domain.
        for (ulong slot = 0x4000_0000; slot < 0x4000_0000 + 16 * 0x20_0000UL; slot += 0x20_0000)
        {
            if (iopt.FirstArea(slot, slot) is not null) continue;
            foreach (IommuSim.Uapi.Driver.VtdPagingDomain d in iopt.Domains)
                require(!d.Table.TryTranslate(slot, out _, out _, out _), $"IOAS {ioas.Id}: domain {d.DomainId} maps unmapped slot 0x{slot:x}");
        }
    }

    /// <summary>mm->pinned_vm and the locked_vm counters equal the pages the iopt_pages have pinned, per mode.</summary>
    private static void CheckPinned(MemlockAccount m, List<IommufdObject> objects, Action<bool, string> require)
    {
        var pages = objects.OfType<Ioas>().SelectMany(i => i.Iopt.Areas).Select(a => a.Pages).Distinct().ToList();
        ulong all = 0, user = 0, mm = 0;
        foreach (var p in pages)
        {
            all += p.PinnedPages;
            if (p.AccountMode == PinAccountMode.User) user += p.PinnedPages;
            if (p.AccountMode == PinAccountMode.Mm) mm += p.PinnedPages;
        }
        require(m.PinnedPages == all, $"pinned_vm {m.PinnedPages} pages, the areas' pages hold {all}");
        require(m.UserLockedPages == user && m.MmLockedPages == mm, $"locked_vm user {m.UserLockedPages}/mm {m.MmLockedPages}, pinned by mode {user}/{mm}");
    }
}
