using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Memory;
using IommuSim.Uapi.Vfio;

namespace IommuSim.Uapi.Tests;

/// <summary>
/// RLIMIT_MEMLOCK accounting of pinned pages (drivers/iommu/iommufd/pages.c): charged when pages are pinned for a
/// domain or an access, once per page of an iopt_pages however many areas and domains use it, to user->locked_vm
/// (default), mm->locked_vm (RLIMIT_MODE = 1, /dev/vfio/vfio) or nothing (CAP_IPC_LOCK); ENOMEM past the limit,
/// with nothing changed.
/// </summary>
public class MemlockTests
{
    private const ulong Page = 4096;

    private static (Sim S, uint Ioas, IommufdDevice Dev, ulong Buf) Attached(ulong limitPages)
    {
        var s = new Sim();
        s.Process.Mm.Memlock.LimitPages = limitPages;
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        return (s, ioas, dev, s.Mmap(0x400000));
    }

    [Fact]
    public void Pages_are_charged_when_pinned_and_released_when_unmapped()
    {
        var (s, ioas, _, buf) = Attached(limitPages: 16);
        var m = s.Process.Mm.Memlock;
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 10 * Page, 0x100000));
        Assert.Equal(10UL, m.UserLockedPages);
        Assert.Equal(10UL, m.PinnedPages);
        Assert.Equal(0UL, m.MmLockedPages);
        // 10 + 7 > 16: refused, and nothing is mapped or charged.
        Assert.Equal(Errno.ENOMEM, s.Map(ioas, buf + 0x100000, 7 * Page, 0x200000));
        Assert.Equal(10UL, m.UserLockedPages);
        Assert.True(s.Dma(Sim.Dev3, 0x200000).Faulted);
        Assert.Empty(s.IoasObj(ioas).Iopt.AreasIn(0x200000, 0x206fff));
        Assert.Equal(Errno.OK, s.Map(ioas, buf + 0x100000, 6 * Page, 0x200000));
        Assert.Equal(16UL, m.UserLockedPages);
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x100000, 10 * Page));
        Assert.Equal(6UL, m.UserLockedPages);
        Assert.Equal(6UL, m.PinnedPages);
    }

    [Fact]
    public void A_partial_page_is_charged_as_a_whole_page()
    {
        var (s, _, _, buf) = Attached(limitPages: MemlockAccount.Unlimited);
        // 0x2000 bytes from a page offset of 0x800 ([0x800, 0x27ff]) touch three pages.
        var pages = new Iopt.IoptPages(s.Process.Mm, buf + 0x800, 0x2000, writable: true, PinAccountMode.User);
        Assert.Equal(Errno.OK, pages.Pin(0, 0x2000));
        Assert.Equal(3UL, pages.PinnedPages);
        Assert.Equal(Errno.OK, pages.Pin(0x1000, 0x10)); // already pinned: nothing new
        Assert.Equal(3UL, s.Process.Mm.Memlock.UserLockedPages);
        pages.Unpin(0x1000, 0x10);
        pages.Unpin(0, 0x2000);
        Assert.Equal(0UL, s.Process.Mm.Memlock.UserLockedPages);
    }

    [Fact]
    public void Mapping_without_a_domain_pins_nothing_until_the_first_attach_which_fails_atomically()
    {
        var s = new Sim();
        var m = s.Process.Mm.Memlock;
        m.LimitPages = 8;
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 6 * Page, 0x100000));
        Assert.Equal(Errno.OK, s.Map(ioas, buf + 0x10000, 6 * Page, 0x200000));
        Assert.Equal(0UL, m.PinnedPages);
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.ENOMEM, s.Attach(dev, ioas, out _)); // 12 pages > 8
        Assert.Equal(0UL, m.UserLockedPages);
        Assert.Equal(0UL, m.PinnedPages);
        Assert.Empty(s.IoasObj(ioas).Iopt.Domains);
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x200000, 6 * Page));
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        Assert.Equal(6UL, m.UserLockedPages);
        Assert.False(s.Dma(Sim.Dev3, 0x100000).Faulted);
    }

    [Fact]
    public void A_second_domain_and_an_ioas_copy_share_the_pins()
    {
        var (s, ioas, _, buf) = Attached(limitPages: 8);
        var m = s.Process.Mm.Memlock;
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 8 * Page, 0x100000));
        uint ioas2 = s.IoasAlloc();
        var copy = new IommuIoasCopy { dst_ioas_id = ioas2, src_ioas_id = ioas, length = 8 * Page, src_iova = 0x100000, dst_iova = 0x300000,
            flags = IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.READABLE | IommuIoasMapFlags.WRITEABLE };
        Assert.Equal(Errno.OK, s.Ctx.IoasCopy(copy));
        var dev4 = s.Bind(Sim.Dev4);
        Assert.Equal(Errno.OK, s.Attach(dev4, ioas2, out _)); // the same iopt_pages: already pinned, limit not hit
        Assert.Equal(8UL, m.UserLockedPages);
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x100000, 8 * Page));
        Assert.Equal(8UL, m.UserLockedPages); // still pinned through the copy
        Assert.Equal(Errno.OK, s.Unmap(ioas2, 0x300000, 8 * Page));
        Assert.Equal(0UL, m.UserLockedPages);
    }

    [Fact]
    public void Detaching_the_last_device_unpins()
    {
        var (s, ioas, dev, buf) = Attached(limitPages: 64);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 8 * Page, 0x100000));
        Assert.Equal(8UL, s.Process.Mm.Memlock.PinnedPages);
        Assert.Equal(Errno.OK, s.Ctx.DeviceDetach(dev, 0));
        Assert.Equal(0UL, s.Process.Mm.Memlock.PinnedPages);
        Assert.Equal(0UL, s.Process.Mm.Memlock.UserLockedPages);
    }

    [Fact]
    public void An_access_pins_what_it_covers()
    {
        var s = new Sim();
        var m = s.Process.Mm.Memlock;
        m.LimitPages = 4;
        uint ioas = s.IoasAlloc();
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 8 * Page, 0x100000)); // no domain: nothing pinned
        Assert.Equal(Errno.OK, s.Ctx.AccessCreate(ioas, out uint accessId));
        var access = (IommufdAccess)s.Ctx.Lookup(accessId)!;
        Assert.Equal(Errno.OK, access.Pin(0x101000, 3 * Page));
        Assert.Equal(3UL, m.UserLockedPages);
        Assert.Equal(Errno.ENOMEM, access.Pin(0x104000, 2 * Page)); // 3 + 2 > 4
        Assert.Equal(3UL, m.UserLockedPages);
        Assert.Equal(Errno.OK, access.Unpin(0x101000, 3 * Page));
        Assert.Equal(0UL, m.UserLockedPages);
    }

    [Fact]
    public void Rlimit_mode_1_and_the_vfio_container_charge_the_process_counter()
    {
        var s = new Sim();
        var m = s.Process.Mm.Memlock;
        Assert.Equal(Errno.OK, s.Ctx.Option(new IommuOption { option_id = IommuOptionId.RLIMIT_MODE, op = IommuOptionOp.SET, val64 = 1 }));
        uint ioas = s.IoasAlloc();
        var dev = s.Bind(Sim.Dev3);
        Assert.Equal(Errno.OK, s.Attach(dev, ioas, out _));
        ulong buf = s.Mmap(0x200000);
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 4 * Page, 0x100000));
        Assert.Equal(4UL, m.MmLockedPages);
        Assert.Equal(0UL, m.UserLockedPages);

        // /dev/vfio/vfio: RLIMIT_MODE reads 1 and VFIO_IOMMU_MAP_DMA charges mm->locked_vm, with ENOMEM past the limit.
        int container = s.Process.OpenContainer(out var c);
        var get = new IommuOption { option_id = IommuOptionId.RLIMIT_MODE, op = IommuOptionOp.GET };
        Assert.Equal(Errno.OK, c.Option(get));
        Assert.Equal(1UL, get.val64);
        Assert.Equal(Errno.OK, s.Process.OpenGroup(4, out int group));
        Assert.Equal(Errno.OK, s.Process.GroupSetContainer(group, container));
        Assert.Equal(Errno.OK, c.VfioSetIommu(VfioConst.VFIO_TYPE1v2_IOMMU));
        Assert.Equal(Errno.OK, s.Process.GroupGetDeviceFd(group, "0000:04:00.0", out _));
        m.LimitPages = 10;
        const uint rw = VfioConst.VFIO_DMA_MAP_FLAG_READ | VfioConst.VFIO_DMA_MAP_FLAG_WRITE;
        Assert.Equal(Errno.OK, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf + 0x100000, iova = 0x4000_0000, size = 6 * Page, flags = rw }));
        Assert.Equal(10UL, m.MmLockedPages);
        Assert.Equal(Errno.ENOMEM, c.VfioMapDma(new VfioIommuType1DmaMap { vaddr = buf + 0x180000, iova = 0x5000_0000, size = Page, flags = rw }));
        Assert.Equal(10UL, m.PinnedPages);
    }

    [Fact]
    public void Cap_ipc_lock_pins_without_charging()
    {
        var (s, ioas, _, buf) = Attached(limitPages: 1);
        s.Process.Mm.Memlock.CapIpcLock = true;
        Assert.Equal(Errno.OK, s.Map(ioas, buf, 64 * Page, 0x100000));
        Assert.Equal(0UL, s.Process.Mm.Memlock.UserLockedPages);
        Assert.Equal(64UL, s.Process.Mm.Memlock.PinnedPages);
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x100000, 64 * Page));
        Assert.Equal(0UL, s.Process.Mm.Memlock.PinnedPages);
    }
}
