using CsCheck;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.Boundary;

/// <summary>
/// <see cref="IommufdIoctlTable"/> against drivers/iommu/iommufd/main.c: the rows of <c>iommufd_ioctl_ops[]</c>
/// (IOCTL_OP: min_size = offsetofend(struct, last field), size = sizeof(struct)) and the checks of
/// <c>iommufd_fops_ioctl</c>, in its order.
/// </summary>
public class IoctlTableTests
{
    /// <summary>iommufd_ioctl_ops[] is indexed by _IOC_NR(cmd) - IOMMUFD_CMD_BASE: the rows are dense from 0x80, one per
    /// command of include/uapi/linux/iommufd.h (IOMMUFD_CMD_DESTROY = 0x80 … IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94).</summary>
    [Fact]
    public void Table_is_dense_from_IOMMUFD_CMD_BASE_and_min_size_never_exceeds_size()
    {
        for (int i = 0; i < IommufdIoctlTable.Ops.Count; i++)
        {
            var op = IommufdIoctlTable.Ops[i];
            Assert.Equal(IommufdIoctlTable.IOMMUFD_CMD_BASE + (uint)i, op.Nr);
            Assert.Same(op, IommufdIoctlTable.Find(op.Nr));
            Assert.Same(op, IommufdIoctlTable.ByName(op.Name));
            Assert.True(op.MinSize <= op.Size, op.Name);
            Assert.True(op.MinSize >= 8 && op.MinSize % 4 == 0, op.Name); // every struct starts with u32 size and one more u32
        }
        Assert.Equal(0x94u, IommufdIoctlTable.Ops[^1].Nr);
    }

    /// <summary>IOCTL_OP rows whose struct grew after its first version (main.c): min_size stays at the old end.</summary>
    [Theory]
    [InlineData("DESTROY", 0x80, 8, 8)]                       // struct iommu_destroy, last: id
    [InlineData("IOAS_ALLOC", 0x81, 12, 12)]                  // out_ioas_id
    [InlineData("IOAS_ALLOW_IOVAS", 0x82, 24, 24)]            // allowed_iovas
    [InlineData("IOAS_COPY", 0x83, 40, 40)]                   // src_iova
    [InlineData("IOAS_IOVA_RANGES", 0x84, 32, 32)]            // out_iova_alignment
    [InlineData("IOAS_MAP", 0x85, 40, 40)]                    // iova
    [InlineData("IOAS_UNMAP", 0x86, 24, 24)]                  // length
    [InlineData("OPTION", 0x87, 24, 24)]                      // val64
    [InlineData("VFIO_IOAS", 0x88, 12, 12)]                   // __reserved
    [InlineData("HWPT_ALLOC", 0x89, 24, 48)]                  // __reserved; data_type, data_len, data_uptr, fault_id came later
    [InlineData("GET_HW_INFO", 0x8a, 32, 40)]                 // __reserved[3] (after data_uptr); out_capabilities came later
    [InlineData("HWPT_SET_DIRTY_TRACKING", 0x8b, 16, 16)]     // __reserved
    [InlineData("HWPT_GET_DIRTY_BITMAP", 0x8c, 48, 48)]       // data
    [InlineData("HWPT_INVALIDATE", 0x8d, 32, 32)]             // __reserved
    [InlineData("FAULT_QUEUE_ALLOC", 0x8e, 16, 16)]           // out_fault_fd
    [InlineData("IOAS_MAP_FILE", 0x8f, 40, 40)]               // iova
    [InlineData("VIOMMU_ALLOC", 0x90, 24, 40)]                // out_viommu_id; data_len, data_uptr (v6.16)
    [InlineData("VDEVICE_ALLOC", 0x91, 24, 24)]               // virt_id
    [InlineData("IOAS_CHANGE_PROCESS", 0x92, 8, 8)]           // __reserved
    [InlineData("VEVENTQ_ALLOC", 0x93, 32, 32)]               // __reserved
    [InlineData("HW_QUEUE_ALLOC", 0x94, 40, 40)]              // length
    public void Row_matches_IOCTL_OP(string name, uint nr, uint min, uint size)
    {
        var op = IommufdIoctlTable.ByName(name)!;
        Assert.Equal((nr, min, size), (op.Nr, op.MinSize, op.Size));
    }

    /// <summary>iommufd_fops_ioctl: off the table → iommufd_vfio_ioctl → -ENOIOCTLCMD (ENOTTY); user_size &lt; min_size →
    /// EINVAL; copy_struct_from_user: a larger struct with non-zero bytes past op->size → E2BIG, with zero bytes → accepted.</summary>
    [Theory]
    [InlineData(0x7fu, 64ul, false, Errno.ENOTTY)]   // below IOMMUFD_CMD_BASE
    [InlineData(0x95u, 64ul, false, Errno.ENOTTY)]   // past the last row (HW_QUEUE_ALLOC = 0x94)
    [InlineData(0xffu, 0ul, true, Errno.ENOTTY)]     // ENOTTY before any size check
    [InlineData(0x81u, 11ul, false, Errno.EINVAL)]   // IOAS_ALLOC: one byte short of out_ioas_id
    [InlineData(0x81u, 11ul, true, Errno.EINVAL)]    // the minimum is checked before the unknown bytes
    [InlineData(0x81u, 12ul, true, Errno.OK)]        // exactly the kernel's size: there are no unknown bytes
    [InlineData(0x81u, 16ul, false, Errno.OK)]       // larger, zero tail
    [InlineData(0x81u, 16ul, true, Errno.E2BIG)]     // larger, non-zero tail
    [InlineData(0x89u, 24ul, false, Errno.OK)]       // HWPT_ALLOC at its first-version size: the rest is zero-filled
    [InlineData(0x89u, 47ul, true, Errno.OK)]        // between min_size and size: nothing unknown
    [InlineData(0x89u, 49ul, true, Errno.E2BIG)]
    public void Dispatch_checks_in_the_kernels_order(uint nr, ulong userSize, bool unknownBytesNonZero, Errno expected)
        => Assert.Equal(expected, IommufdIoctlTable.Check(nr, userSize, unknownBytesNonZero));

    /// <summary>The dispatch as a property: for any number, size and tail, the result is the first failing check of
    /// iommufd_fops_ioctl, in order (ENOTTY, EINVAL, E2BIG), else OK.</summary>
    [Fact]
    public void Dispatch_is_the_first_failing_check()
    {
        Gen.Select(Gen.UInt[0x70, 0xa0], Gen.ULong[0, 128], Gen.Bool).Sample((nr, size, tail) =>
        {
            var op = IommufdIoctlTable.Find(nr);
            Errno want = op is null ? Errno.ENOTTY
                : size < op.MinSize ? Errno.EINVAL
                : size > op.Size && tail ? Errno.E2BIG
                : Errno.OK;
            return IommufdIoctlTable.Check(nr, size, tail) == want;
        });
    }

    /// <summary>The struct is copied in only after the size checks pass (copy_struct_from_user follows them), and the
    /// handler of the row runs: IOAS_ALLOC through the table allocates an IOAS (iommufd_ioas_alloc_ioctl).</summary>
    [Fact]
    public void Ioctl_copies_the_struct_only_after_the_checks_then_runs_the_rows_handler()
    {
        var s = new Sim();
        int copies = 0;
        IommuIoasAlloc Copy() { copies++; return new IommuIoasAlloc(); }

        Assert.Equal(Errno.EINVAL, s.Ctx.Ioctl(0x81, 8, false, Copy, out IommuIoasAlloc? none));
        Assert.Null(none);
        Assert.Equal(Errno.E2BIG, s.Ctx.Ioctl(0x81, 16, true, Copy, out none));
        Assert.Equal(0, copies);

        Assert.Equal(Errno.OK, s.Ctx.Ioctl(0x81, 12, false, Copy, out IommuIoasAlloc? alloc));
        Assert.Equal(1, copies);
        Assert.NotNull(alloc);
        Assert.IsType<Ioas>(s.Ctx.Lookup(alloc!.out_ioas_id));
    }

    /// <summary>op->ioctl_num != cmd → -ENOIOCTLCMD: the command number encodes its struct, so another struct is ENOTTY.</summary>
    [Fact]
    public void Ioctl_with_another_commands_struct_is_ENOTTY()
    {
        var s = new Sim();
        Assert.Equal(Errno.ENOTTY, s.Ctx.Ioctl(0x81, new IommuDestroy { id = 1 }));
        Assert.Empty(s.Ctx.Objects);
    }

    /// <summary>iommufd_ioas_map_file: fget(cmd->fd) on the caller's file table; an fd that is no file is EBADF.</summary>
    [Fact]
    public void Ioas_map_file_through_the_table_resolves_the_fd_in_the_callers_file_table()
    {
        var s = new Sim();
        uint ioas = s.IoasAlloc();
        int memfd = s.Process.CreateMemfd(0x200000, out _);
        var bad = new IommuIoasMapFile { ioas_id = ioas, fd = memfd + 100, length = 0x1000, flags = IommuIoasMapFlags.READABLE };
        Assert.Equal(Errno.EBADF, s.Ctx.Ioctl(0x8f, bad));
        var ok = new IommuIoasMapFile { ioas_id = ioas, fd = memfd, length = 0x1000, iova = 0x100000, flags = IommuIoasMapFlags.FIXED_IOVA | IommuIoasMapFlags.READABLE };
        Assert.Equal(Errno.OK, s.Ctx.Ioctl(0x8f, ok));
        Assert.Equal(Errno.OK, s.Unmap(ioas, 0x100000, 0x1000)); // the file's page is mapped there
    }
}
