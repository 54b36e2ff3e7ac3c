using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Memory;
using IommuSim.Uapi.Vfio;

namespace IommuSim.Uapi.Tests.Fuzz;

/// <summary>What a fuzzed call does: a kind and four small operands that pick objects, buffers, IOVA slots and sizes.</summary>
public readonly record struct FuzzOp(FuzzKind Kind, int A, int B, int C, int D)
{
    public override string ToString() => $"new({nameof(FuzzKind)}.{Kind}, {A}, {B}, {C}, {D})";
}

public enum FuzzKind
{
    IoasAlloc, MapFixed, MapAuto, Unmap, UnmapAll, Copy, Bind, Unbind, Attach, Detach, HwptPaging, HwptNested,
    AccessCreate, AccessPin, AccessUnpin, Destroy, MapFile, CompatSet, CompatMap, CompatUnmap, CompatType1, Dma,
    HugePages, HugeSizes, FaultAlloc,
}

/// <summary>
/// Runs one random call sequence against a fresh simulated system and checks, after every call, that nothing
/// threw and that the model is self-consistent: reference counts equal the references that exist, every area of
/// every IOAS is mapped in each of its domains to the pages behind it (and nothing else is), a DMA reaches exactly
/// the page its IOAS maps and faults elsewhere, and the pinned-page counters equal the pages pinned. Closing the
/// context at the end must bring every memlock counter back to zero.
/// </summary>
public sealed class UapiFuzzer
{
    private const ulong Page = 0x1000;
    private const ulong Slot = 0x20_0000;          // IOVA slots: 2 MiB apart from 1 GiB up
    private const ulong SlotBase = 0x4000_0000;
    private const int Slots = 16;

    private readonly Sim _s = new();
    private readonly List<ulong> _bufs = [];        // user memory: 2 writable 4 MiB, 1 read-only 2 MiB
    private readonly List<(int Fd, Memfd File)> _memfds = [];
    private readonly List<IommufdDevice> _devs = [];
    private int _step;

    /// <summary>What the run exercised (for tuning the generator): successful calls by kind, DMAs that reached memory.</summary>
    public (Dictionary<string, int> Ok, int DmaOk, int AreasInDomains, int MaxObjects) Stats = ([], 0, 0, 0);

    public UapiFuzzer()
    {
        _bufs.Add(_s.Mmap(0x40_0000));
        _bufs.Add(_s.Mmap(0x40_0000));
        _bufs.Add(_s.Mmap(0x20_0000, writable: false));
    }

    private IommufdContext Ctx => _s.Ctx;

    private static ulong SlotIova(int i) => SlotBase + Slot * (ulong)(i % Slots);

    private T? Pick<T>(int i) where T : IommufdObject
    {
        var all = Ctx.Objects.OfType<T>().ToList();
        return all.Count == 0 ? null : all[i % all.Count];
    }

    private uint PickId<T>(int i) where T : IommufdObject => Pick<T>(i)?.Id ?? (uint)(i % 40);

    public void Run(IReadOnlyList<FuzzOp> ops)
    {
        foreach (var op in ops)
        {
            _step++;
            Errno rc = Apply(op);
            if (rc == Errno.OK) Stats.Ok[op.Kind.ToString()] = Stats.Ok.GetValueOrDefault(op.Kind.ToString()) + 1;
            else Stats.Ok[op.Kind + "/" + rc] = Stats.Ok.GetValueOrDefault(op.Kind + "/" + rc) + 1;
            Stats.MaxObjects = Math.Max(Stats.MaxObjects, Ctx.Objects.Count());
            Stats.AreasInDomains += Ctx.Objects.OfType<Ioas>().Sum(i => i.Iopt.Areas.Count(a => a.InDomains));
            Check(op);
        }
        var eventqFds = Ctx.EventqFiles.ToList();
        _s.Process.Close(3); // the script's /dev/iommu fd: destroys every object leaf first, once no fault fd holds it
        Require(Ctx.Closed == (eventqFds.Count == 0), $"context closed = {Ctx.Closed} with {eventqFds.Count} fault fds open");
        _s.Process.Exit();   // the fault fds go too: iommufd_eventq_fops_release drops the last context reference
        Require(Ctx.Closed, "context still open after every fd closed");
        var m = _s.Process.Mm.Memlock;
        Require(m.PinnedPages == 0 && m.UserLockedPages == 0 && m.MmLockedPages == 0,
            $"after close: pinned_vm {m.PinnedPages}, user locked {m.UserLockedPages}, mm locked {m.MmLockedPages}");
    }

    private void Require(bool ok, string what)
    {
        if (!ok) throw new InvalidOperationException($"step {_step}: {what}");
    }

    private Errno Apply(FuzzOp op)
    {
        uint rw = IommuIoasMapFlags.READABLE | ((op.D & 1) == 0 ? IommuIoasMapFlags.WRITEABLE : 0);
        ulong buf = _bufs[op.B % _bufs.Count];
        ulong len = Page * (ulong)(1 + op.C % 64) * ((op.D & 2) != 0 ? 8UL : 1UL);
        ulong off = Page * (ulong)(op.C * 7 % 512);
        switch (op.Kind)
        {
            case FuzzKind.IoasAlloc:
                return Ctx.IoasAlloc(new IommuIoasAlloc());
            case FuzzKind.MapFixed:
                return Ctx.IoasMap(new IommuIoasMap { ioas_id = PickId<Ioas>(op.A), user_va = buf + off, length = len, iova = SlotIova(op.A + op.D), flags = IommuIoasMapFlags.FIXED_IOVA | rw });
            case FuzzKind.MapAuto:
                return Ctx.IoasMap(new IommuIoasMap { ioas_id = PickId<Ioas>(op.A), user_va = buf + off, length = len, flags = rw });
            case FuzzKind.Unmap:
                {
                    var ioas = Pick<Ioas>(op.A);
                    var area = ioas is null || ioas.Iopt.Areas.Count == 0 ? null : ioas.Iopt.Areas[op.B % ioas.Iopt.Areas.Count];
                    ulong iova = area?.Iova ?? SlotIova(op.B), length = area?.Length ?? len;
                    if ((op.D & 4) != 0) length += Page; // sometimes partial: ENOENT, or more than one area
                    var rc = Ctx.IoasUnmap(new IommuIoasUnmap { ioas_id = ioas?.Id ?? 0, iova = iova, length = length });
                    if (rc == Errno.OK && ioas is not null) CheckUnmappedFaults(ioas, iova, length);
                    return rc;
                }
            case FuzzKind.UnmapAll:
                return Ctx.IoasUnmap(new IommuIoasUnmap { ioas_id = PickId<Ioas>(op.A), iova = 0, length = ulong.MaxValue });
            case FuzzKind.Copy:
                {
                    var src = Pick<Ioas>(op.A);
                    var area = src is null || src.Iopt.Areas.Count == 0 ? null : src.Iopt.Areas[op.B % src.Iopt.Areas.Count];
                    return Ctx.IoasCopy(new IommuIoasCopy
                    {
                        src_ioas_id = src?.Id ?? 0, dst_ioas_id = PickId<Ioas>(op.C), src_iova = area?.Iova ?? 0, length = area?.Length ?? Page,
                        dst_iova = SlotIova(op.D), flags = IommuIoasMapFlags.READABLE | ((op.D & 1) == 0 ? IommuIoasMapFlags.FIXED_IOVA : 0),
                    });
                }
            case FuzzKind.Bind:
                {
                    var spec = _s.Kernel.Devices[op.A % _s.Kernel.Devices.Count];
                    var rc = Ctx.DeviceBind(spec, out var idev);
                    if (rc == Errno.OK) _devs.Add(idev);
                    return rc;
                }
            case FuzzKind.Unbind:
                if (Pick<IommufdDevice>(op.A) is not { } u) return Errno.ENOENT;
                Ctx.DeviceUnbind(u);
                return Errno.OK;
            case FuzzKind.Attach:
                {
                    if (Pick<IommufdDevice>(op.A) is not { } d) return Errno.ENOENT;
                    uint pt = (op.C % 5) switch { < 3 => PickId<Ioas>(op.B), 3 => PickId<HwptPaging>(op.B), _ => PickId<HwptNested>(op.B) };
                    return Ctx.IsAttached(d, 0) ? Ctx.DeviceReplace(d, 0, ref pt) : Ctx.DeviceAttach(d, 0, ref pt);
                }
            case FuzzKind.Detach:
                return Pick<IommufdDevice>(op.A) is { } dd ? Ctx.DeviceDetach(dd, 0) : Errno.ENOENT;
            case FuzzKind.HwptPaging:
                {
                    uint flags = (uint)(op.C % 4) switch { 0 => 0, 1 => IommuHwptAllocFlags.NEST_PARENT, 2 => IommuHwptAllocFlags.DIRTY_TRACKING, _ => IommuHwptAllocFlags.FAULT_ID_VALID };
                    return Ctx.HwptAlloc(new IommuHwptAlloc { dev_id = PickId<IommufdDevice>(op.A), pt_id = PickId<Ioas>(op.B), flags = flags, fault_id = PickId<FaultQueue>(op.D) });
                }
            case FuzzKind.HwptNested:
                return Ctx.HwptAlloc(new IommuHwptAlloc
                {
                    dev_id = PickId<IommufdDevice>(op.A), pt_id = PickId<HwptPaging>(op.B), data_type = IommuHwptDataType.VTD_S1,
                    data = new IommuHwptVtdS1 { pgtbl_addr = Page * (ulong)op.C, addr_width = 48 },
                });
            case FuzzKind.AccessCreate:
                return Ctx.AccessCreate(PickId<Ioas>(op.A), out _);
            case FuzzKind.AccessPin:
                if (Pick<IommufdAccess>(op.A) is { } acc && acc.Ioas.Iopt.Areas.Count > 0)
                {
                    var a = acc.Ioas.Iopt.Areas[op.B % acc.Ioas.Iopt.Areas.Count];
                    return acc.Pin(a.Iova & ~(Page - 1), Math.Min(a.Length, Page * (ulong)(1 + op.C % 4)));
                }
                return Errno.ENOENT;
            case FuzzKind.AccessUnpin:
                if (Pick<IommufdAccess>(op.A) is { } acu && acu.Pins.Count > 0)
                {
                    var (s, l) = acu.Pins[op.B % acu.Pins.Count];
                    return acu.Unpin(s, l - s + 1);
                }
                return Errno.ENOENT;
            case FuzzKind.Destroy:
                {
                    var all = Ctx.Objects.ToList();
                    uint id = all.Count == 0 || op.D % 8 == 7 ? (uint)op.A : all[op.A % all.Count].Id;
                    return Ctx.Destroy(new IommuDestroy { id = id });
                }
            case FuzzKind.MapFile:
                {
                    if (_memfds.Count < 2 && _s.Process.TryCreateMemfd(0x40_0000, out int fd, out var file) == Errno.OK) _memfds.Add((fd, file));
                    var (mfd, mf) = _memfds[op.B % _memfds.Count];
                    return Ctx.IoasMapFile(new IommuIoasMapFile { ioas_id = PickId<Ioas>(op.A), fd = mfd, start = off, length = len, iova = SlotIova(op.A + op.D), flags = IommuIoasMapFlags.FIXED_IOVA | rw }, mf);
                }
            case FuzzKind.CompatSet:
                return Ctx.VfioIoas(new IommuVfioIoas { ioas_id = PickId<Ioas>(op.A), op = (ushort)(op.C % 3) });
            case FuzzKind.CompatMap:
                return Ctx.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf + off, iova = SlotIova(op.A), size = len, flags = VfioConst.VFIO_DMA_MAP_FLAG_READ | ((op.D & 1) == 0 ? VfioConst.VFIO_DMA_MAP_FLAG_WRITE : 0) });
            case FuzzKind.CompatUnmap:
                return Ctx.VfioUnmapDma(new VfioIommuType1DmaUnmap { iova = SlotIova(op.A) + Page * (ulong)(op.B % 4), size = len, flags = op.D % 5 == 0 ? VfioConst.VFIO_DMA_UNMAP_FLAG_ALL : 0 });
            case FuzzKind.CompatType1:
                return Ctx.VfioSetIommu(op.A % 2 == 0 ? VfioConst.VFIO_TYPE1_IOMMU : VfioConst.VFIO_TYPE1v2_IOMMU);
            case FuzzKind.Dma:
                return DmaProbe(op);
            case FuzzKind.HugePages:
                return Ctx.Option(new IommuOption { option_id = IommuOptionId.HUGE_PAGES, op = IommuOptionOp.SET, object_id = PickId<Ioas>(op.A), val64 = (ulong)(op.C % 2) });
            case FuzzKind.FaultAlloc:
                return Ctx.FaultQueueAlloc(new IommuFaultAlloc());
            case FuzzKind.HugeSizes:
                {
                    ulong huge = ulong.MaxValue - Page * (ulong)op.C;
                    uint ioas = PickId<Ioas>(op.A);
                    Ctx.IoasMap(new IommuIoasMap { ioas_id = ioas, user_va = buf, length = huge, iova = SlotIova(op.B), flags = IommuIoasMapFlags.FIXED_IOVA | rw });
                    Ctx.IoasMap(new IommuIoasMap { ioas_id = ioas, user_va = buf, length = 1UL << (36 + op.D % 8), flags = rw });
                    Ctx.IoasUnmap(new IommuIoasUnmap { ioas_id = ioas, iova = huge, length = huge });
                    Ctx.VfioMapDma(new VfioIommuType1DmaMap { vaddr = huge, iova = SlotIova(op.B), size = huge, flags = VfioConst.VFIO_DMA_MAP_FLAG_READ });
                    Ctx.VfioUnmapDma(new VfioIommuType1DmaUnmap { iova = huge, size = huge });
                    Ctx.IoasMapFile(new IommuIoasMapFile { ioas_id = ioas, fd = 99, start = huge, length = huge, flags = IommuIoasMapFlags.READABLE }, _memfds.Count > 0 ? _memfds[0].File : null);
                    Ctx.IoasCopy(new IommuIoasCopy { src_ioas_id = ioas, dst_ioas_id = ioas, src_iova = SlotIova(op.B), length = huge, flags = IommuIoasMapFlags.READABLE });
                    if (Pick<IommufdAccess>(op.A) is { } ha) ha.Pin(SlotIova(op.B), huge);
                    if (Pick<HwptPaging>(op.A) is { } hp)
                        Ctx.HwptGetDirtyBitmap(new IommuHwptGetDirtyBitmap { hwpt_id = hp.Id, iova = 0, length = 1UL << 48, page_size = Page });
                    var ranges = new IommuIoasIovaRanges { ioas_id = ioas, num_iovas = uint.MaxValue };
                    return Ctx.IoasIovaRanges(ranges);
                }
        }
        return Errno.OK;
    }

    /// <summary>A DMA from an attached device to an IOVA slot (or just past an area) must reach exactly the page the
    /// IOAS maps there, with its permission, and fault where nothing is mapped.</summary>
    private Errno DmaProbe(FuzzOp op)
    {
        var attached = Ctx.Objects.OfType<IommufdDevice>().Where(x => x.Group.Get(0) is { Hwpt: HwptPaging } a && a.Devices.Contains(x)).ToList();
        if (attached.Count == 0) return Errno.ENODEV;
        var d = attached[op.A % attached.Count];
        var hwpt = (HwptPaging)d.Group.Get(0)!.Hwpt;
        var areas = hwpt.Ioas.Iopt.Areas;
        ulong iova = areas.Count > 0 && op.B % 2 == 0 ? areas[op.C % areas.Count].Iova + (op.D % 2 == 0 ? 0 : areas[op.C % areas.Count].Length)
            : SlotIova(op.C) + Page * (ulong)(op.D % 8);
        var access = op.D % 3 == 0 ? Access.Write : Access.Read;
        var r = _s.Dma(d.Spec.Rid, iova & ~(Page - 1), access);
        var area = hwpt.Ioas.Iopt.FirstArea(iova & ~(Page - 1), iova & ~(Page - 1));
        if (area is null || (area.Prot & access) == 0)
        {
            Require(r.Faulted, $"DMA {access} to 0x{iova:x} reached 0x{r.PhysicalAddress:x} though the IOAS maps nothing there for it");
            return Errno.EFAULT;
        }
        Require(!r.Faulted, $"DMA {access} to mapped 0x{iova:x} faulted ({r.Reason})");
        Require(r.PhysicalAddress == ExpectedPa(area, iova & ~(Page - 1)), $"DMA to 0x{iova:x} reached 0x{r.PhysicalAddress:x}, not 0x{ExpectedPa(area, iova & ~(Page - 1)):x}");
        Stats.DmaOk++;
        return Errno.OK;
    }

    /// <summary>After a strict IOAS_UNMAP returned, no attached device reaches the unmapped range.</summary>
    private void CheckUnmappedFaults(Ioas ioas, ulong iova, ulong length)
    {
        foreach (var d in _devs)
        {
            if (d.Destroyed || d.Group.Get(0) is not { Hwpt: HwptPaging h } || !ReferenceEquals(h.Ioas, ioas)) continue;
            ulong probe = iova & ~(Page - 1);
            if (ioas.Iopt.FirstArea(probe, probe) is not null) continue;
            var r = _s.Dma(d.Spec.Rid, probe, Access.Read);
            Require(r.Faulted, $"DMA to 0x{probe:x} after its unmap returned reached 0x{r.PhysicalAddress:x}");
        }
    }

    private ulong ExpectedPa(Iopt.IoptArea a, ulong iova)
    {
        ulong src = a.StartByte + (iova - a.Iova);
        if (a.Pages.File is Memfd f) return f.PhysicalBase + a.Pages.FileStart + src;
        return _s.Process.Mm.Translate(a.Pages.Uptr + src) ?? ulong.MaxValue;
    }

    private void Check(FuzzOp op) => UapiInvariants.Check(_s, ExpectedPa, Require);
}
