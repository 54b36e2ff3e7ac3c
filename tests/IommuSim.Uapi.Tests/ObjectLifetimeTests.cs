using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests;

/// <summary>iommufd.md section 1: ids, typed lookup, references, auto/manual HWPTs, groups, replace.</summary>
public class ObjectLifetimeTests
{
    private static PlatformSpec SharedGroup() => new()
    {
        Devices = [DeviceSpec.Parse("0000:03:00.0", 7), DeviceSpec.Parse("0000:03:00.1", 7), DeviceSpec.Parse("0000:04:00.0", 4)],
    };

    private static readonly RequesterId Fn1 = new(3, 0, 1);

    [Fact]
    public void Ids_StartAtOne_AndTheLowestFreeIdIsReused()
    {
        var s = new Sim();
        Assert.Equal(1u, s.IoasAlloc());
        Assert.Equal(2u, s.IoasAlloc());
        Assert.Equal(3u, s.IoasAlloc());
        Assert.Equal(Errno.OK, s.Ctx.Destroy(new IommuDestroy { id = 2 }));
        Assert.Equal(2u, s.IoasAlloc());
        Assert.Equal(4u, s.IoasAlloc());
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(99u)]
    public void Destroy_MissingId_IsENOENT(uint id) => Assert.Equal(Errno.ENOENT, new Sim().Ctx.Destroy(new IommuDestroy { id = id }));

    [Fact]
    public void TypedLookup_WrongType_IsENOENT()
    {
        var s = new Sim();
        var dev = s.Bind(Sim.Dev3);
        // A device id where an IOAS is expected.
        Assert.Equal(Errno.ENOENT, s.Ctx.IoasMap(new IommuIoasMap { ioas_id = dev.Id, user_va = s.Mmap(0x1000), length = 0x1000, flags = 6 }));
        Assert.Equal(Errno.ENOENT, s.Ctx.HwptSetDirtyTracking(new IommuHwptSetDirtyTracking { hwpt_id = dev.Id }));
    }

    [Fact]
    public void Device_CannotBeDestroyed_ItsDriverHoldsIt()
    {
        var s = new Sim();
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.EBUSY, s.Ctx.Destroy(new IommuDestroy { id = dev.Id }));
    }

    [Fact]
    public void Ioas_WithMappingsButNoHwpt_DestroysAndUnmaps()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x1000), 0x1000, 0x10000));
        var obj = s.IoasObj(ioas);
        Assert.Equal(Errno.OK, s.Ctx.Destroy(new IommuDestroy { id = ioas }));
        Assert.Empty(obj.Iopt.Areas);
        Assert.Null(s.Ctx.Lookup(ioas));
    }

    [Fact]
    public void Ioas_HeldByHwpt_IsEBUSY_UntilTheHwptIsDestroyed()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        var alloc = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(alloc));
        Assert.Equal(Errno.EBUSY, s.Ctx.Destroy(new IommuDestroy { id = ioas }));
        Assert.Equal(Errno.OK, s.Ctx.Destroy(new IommuDestroy { id = alloc.out_hwpt_id }));
        Assert.Equal(Errno.OK, s.Ctx.Destroy(new IommuDestroy { id = ioas }));
    }

    [Fact]
    public void AutoHwpt_IsReused_AndDestroyedWithItsLastUser()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var d3 = s.Bind(Sim.Dev3);
        var d4 = s.Bind(Sim.Dev4);
        Assert.Equal(Errno.OK, s.Attach(d3, ioas, out uint h1));
        Assert.Equal(Errno.OK, s.Attach(d4, ioas, out uint h2));
        Assert.Equal(h1, h2);
        var hwpt = (HwptPaging)s.Ctx.Lookup(h1)!;
        Assert.True(hwpt.AutoDomain);
        Assert.Equal(2, hwpt.Users);
        Assert.Equal(Errno.EBUSY, s.Ctx.Destroy(new IommuDestroy { id = h1 }));

        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(d3, 0));
        Assert.NotNull(s.Ctx.Lookup(h1));
        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(d4, 0));
        Assert.Null(s.Ctx.Lookup(h1));
        Assert.Equal(Errno.ENOENT, s.Ctx.Destroy(new IommuDestroy { id = h1 }));
        Assert.Empty(s.IoasObj(ioas).Iopt.Domains);
    }

    [Fact]
    public void ManualHwpt_SurvivesDetach_UntilDestroy()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        var alloc = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(alloc));
        Assert.Equal(Errno.OK, s.Attach(dev, alloc.out_hwpt_id, out _));
        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(dev, 0));
        Assert.NotNull(s.Ctx.Lookup(alloc.out_hwpt_id));
        Assert.Equal(Errno.OK, s.Ctx.Destroy(new IommuDestroy { id = alloc.out_hwpt_id }));
    }

    [Fact]
    public void AutoHwpt_CanNeverBeANestParent()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out uint auto));
        var nested = new IommuHwptAlloc { dev_id = dev.Id, pt_id = auto, data_type = IommuHwptDataType.VTD_S1, data = new IommuHwptVtdS1 { addr_width = 48 } };
        Assert.Equal(Errno.EINVAL, s.Ctx.HwptAlloc(nested));
    }

    [Fact]
    public void Bind_NonCoherent_IsEINVAL_UnisolatedMsi_IsEPERM_OwnedElsewhere_IsEBUSY()
    {
        var spec = new PlatformSpec
        {
            Devices = [DeviceSpec.Parse("0000:03:00.0", 3) with { CacheCoherent = false }, DeviceSpec.Parse("0000:04:00.0", 4) with { MsiIsolated = false },
                DeviceSpec.Parse("0000:05:00.0", 5)],
        };
        var s = new Sim(spec);
        Assert.Equal(Errno.EINVAL, s.Ctx.DeviceBind(s.Device(Sim.Dev3), out _));
        Assert.Equal(Errno.EPERM, s.Ctx.DeviceBind(s.Device(Sim.Dev4), out _));
        var dev5 = s.Device(new RequesterId(5, 0, 0));
        Assert.Equal(Errno.OK, s.Ctx.DeviceBind(dev5, out _));
        var other = s.Kernel.OpenIommufd(s.Process.Mm);
        Assert.Equal(Errno.EBUSY, other.DeviceBind(dev5, out _));

        var unsafeOk = new Sim(spec with { AllowUnsafeInterrupts = true });
        Assert.Equal(Errno.OK, unsafeOk.Ctx.DeviceBind(unsafeOk.Device(Sim.Dev4), out _));
    }

    [Fact]
    public void Group_FirstAttachAttachesEveryMember_LaterDevicesMustNameTheSameHwpt()
    {
        var s = new Sim(SharedGroup());
        uint ioasA = s.IoasAlloc(), ioasB = s.IoasAlloc();
        var f0 = s.Bind(Sim.Dev3);
        var f1 = s.Bind(Fn1);
        Assert.Equal(Errno.OK, s.Attach(f0, ioasA, out uint hwpt));
        // The hardware entry of the other function points at the same domain already.
        var e0 = s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0);
        var e1 = s.Port.Tables.ReadPasidEntry(Fn1, 0);
        Assert.True(e1.Present);
        Assert.Equal(e0.DomainId, e1.DomainId);

        Assert.Equal(Errno.EINVAL, s.Attach(f1, ioasB, out _));
        Assert.Equal(Errno.OK, s.Attach(f1, hwpt, out _));
        Assert.Equal(Errno.EBUSY, s.Attach(f1, hwpt, out _));

        // Detaching one keeps the group attached; the last one blocks it.
        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(f0, 0));
        Assert.True(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).Present);
        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(f1, 0));
        Assert.False(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).Present);
        Assert.False(s.Port.Tables.ReadPasidEntry(Fn1, 0).Present);
    }

    [Fact]
    public void EachGroupMember_ReservesItsOwnMsiWindow()
    {
        var s = new Sim(SharedGroup());
        uint ioas = s.IoasAlloc();
        var f0 = s.Bind(Sim.Dev3);
        var f1 = s.Bind(Fn1);
        Assert.Equal(Errno.OK, s.Attach(f0, ioas, out uint hwpt));
        Assert.Equal(Errno.OK, s.Attach(f1, hwpt, out _));
        var iopt = s.IoasObj(ioas).Iopt;
        Assert.Equal(2, iopt.Reserved.Count(r => r.Start == IommufdContext.MsiWindowStart));
        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(f0, 0));
        Assert.Equal(1, iopt.Reserved.Count(r => r.Start == IommufdContext.MsiWindowStart));
    }

    [Fact]
    public void Replace_NeedsAnAttachment_IsANoOpOnTheSameHwpt_AndMovesTheWholeGroup()
    {
        var s = new Sim(SharedGroup());
        uint ioasA = s.IoasAlloc(), ioasB = s.IoasAlloc();
        var f0 = s.Bind(Sim.Dev3);
        var f1 = s.Bind(Fn1);
        uint pt = ioasA;
        Assert.Equal(Errno.EINVAL, s.Ctx.DeviceReplace(f0, 0, ref pt));

        Assert.Equal(Errno.OK, s.Attach(f0, ioasA, out uint hA));
        Assert.Equal(Errno.OK, s.Attach(f1, hA, out _));
        ushort didA = s.Port.Tables.ReadPasidEntry(Fn1, 0).DomainId;
        pt = hA;
        Assert.Equal(Errno.OK, s.Ctx.DeviceReplace(f0, 0, ref pt));
        Assert.Equal(hA, pt);
        Assert.Equal(didA, s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).DomainId);

        pt = ioasB;
        Assert.Equal(Errno.OK, s.Ctx.DeviceReplace(f0, 0, ref pt));
        Assert.NotEqual(hA, pt);
        Assert.Null(s.Ctx.Lookup(hA)); // the old auto HWPT lost its last users
        ushort didB = s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).DomainId;
        Assert.NotEqual(didA, didB);
        Assert.Equal(didB, s.Port.Tables.ReadPasidEntry(Fn1, 0).DomainId);
        // Reservations moved with the group.
        Assert.DoesNotContain(s.IoasObj(ioasA).Iopt.Reserved, r => r.Owner is IommufdDevice);
        Assert.Equal(2, s.IoasObj(ioasB).Iopt.Reserved.Count(r => r.Owner is IommufdDevice));
    }

    [Fact]
    public void Replace_FailingOnReservation_ChangesNothing()
    {
        var s = new Sim();
        uint ioasA = s.IoasAlloc(), ioasB = s.IoasAlloc();
        // ioasB has a mapping over the MSI window: a device cannot enter it.
        Assert.Equal(Errno.OK, s.Map(ioasB, s.Mmap(0x200000), 0x200000, 0xFEE00000));
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioasA, out uint hA));
        var before = s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0);
        uint pt = ioasB;
        Assert.Equal(Errno.EADDRINUSE, s.Ctx.DeviceReplace(dev, 0, ref pt));
        Assert.Equal(before, s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0));
        Assert.NotNull(s.Ctx.Lookup(hA));
        Assert.True(s.Ctx.IsAttached(dev, 0));
    }

    [Fact]
    public void Close_DestroysEverything_LeafFirst_AndReleasesTheHardware()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        Assert.Equal(Errno.OK, s.Map(ioas, s.Mmap(0x2000), 0x2000, 0x10000));
        var dev = s.Bind(Sim.Dev3);
        var parent = new IommuHwptAlloc { dev_id = dev.Id, pt_id = ioas, flags = IommuHwptAllocFlags.NEST_PARENT };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(parent));
        var nested = new IommuHwptAlloc { dev_id = dev.Id, pt_id = parent.out_hwpt_id, data_type = IommuHwptDataType.VTD_S1, data = new IommuHwptVtdS1 { addr_width = 48 } };
        Assert.Equal(Errno.OK, s.Ctx.HwptAlloc(nested));
        Assert.Equal(Errno.OK, s.Attach(dev, parent.out_hwpt_id, out _));
        s.Ctx.Close();
        Assert.Empty(s.Ctx.Objects);
        Assert.False(s.Port.Tables.ReadPasidEntry(Sim.Dev3, 0).Present);
        // The group is free for another context.
        var other = s.Kernel.OpenIommufd(s.Process.Mm);
        Assert.Equal(Errno.OK, other.DeviceBind(s.Device(Sim.Dev3), out _));
    }
}
