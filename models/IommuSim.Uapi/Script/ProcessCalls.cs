using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.PageTables;
using IommuSim.Uapi.Hardware;
using IommuSim.Uapi.Memory;

namespace IommuSim.Uapi.Script;

/// <summary>Process and memory helpers of the script language: mmap, memfd, rlimits, close, and the device side (DMA, time).</summary>
internal static class ProcessCalls
{
    public static IEnumerable<(string, CallSpec)> Calls()
    {
        var n = ArgKind.Number;
        yield return ("MMAP", ScriptCalls.Spec("va", ["length"], Mmap, ("length", n), ("prot", ArgKind.FlagsOf(typeof(Mman), "PROT_")), ("fd", n), ("offset", n)));
        yield return ("MEMFD_CREATE", ScriptCalls.Spec("fd", ["size"], MemfdCreate, ("size", n)));
        yield return ("DMA", ScriptCalls.Spec(null, ["device", "iova"], Dma, ("device", ArgKind.Device), ("pasid", n), ("iova", n), ("bytes", n), ("op", ArgKind.Op)));
        yield return ("ADVANCE", ScriptCalls.Spec(null, ["ns"], Advance, ("ns", n)));
        yield return ("PROCESS", ScriptCalls.Spec(null, [], Process, ("memlock", ArgKind.Flags(("unlimited", Mman.RLIM_INFINITY))), ("cap_ipc_lock", n)));
        yield return ("CLOSE", ScriptCalls.Spec(null, ["fd"], (s, st) => CallResult.Of(s.Process.Close((int)s.Num(st, "fd"))), ("fd", n)));
    }

    private static CallResult Mmap(ScriptSession s, Statement st)
    {
        ulong len = s.Num(st, "length");
        if (len == 0) return CallResult.Of(Errno.EINVAL);
        ulong prot = s.Flags(st, "prot", Mman.PROT_READ | Mman.PROT_WRITE);
        bool writable = (prot & Mman.PROT_WRITE) != 0;
        ulong va;
        if (st.Has("fd"))
        {
            // MAP_SHARED of a memfd: the file's pages at a new VA.
            ulong fd = s.Num(st, "fd");
            if (fd > int.MaxValue || s.Process.File((int)fd) is not { } f) return CallResult.Of(Errno.EBADF);
            if (f is not Memfd memfd) return CallResult.Of(Errno.ENODEV);
            Errno rc = s.Process.Mm.MmapFile(memfd, s.Num(st, "offset"), len, writable, out va);
            return rc != Errno.OK ? CallResult.Of(rc) : new CallResult { Main = va }.Hex("va", va);
        }
        if (st.Has("offset")) return CallResult.Of(Errno.EINVAL); // an offset needs a file
        Errno mrc = s.Process.Mm.TryMmap(len, writable, UserAddressSpace.HugePageSize, out va);
        return mrc != Errno.OK ? CallResult.Of(mrc) : new CallResult { Main = va }.Hex("va", va);
    }

    /// <summary>memfd_create + ftruncate(size): binds the new fd.</summary>
    private static CallResult MemfdCreate(ScriptSession s, Statement st)
    {
        Errno rc = s.Process.TryCreateMemfd(s.Num(st, "size"), out int fd, out _);
        return rc != Errno.OK ? CallResult.Of(rc) : new CallResult { Main = (ulong)fd }.Dec("fd", (ulong)fd);
    }

    private static CallResult Dma(ScriptSession s, Statement st)
    {
        if (s.Device(st) is not { } dev) return CallResult.Of(Errno.ENODEV);
        uint? pasid = st.Has("pasid") ? s.U32(st, "pasid") : null;
        var op = st.Has("op") && s.Raw(st, "op") == "W" ? Access.Write : Access.Read;
        int bytes = (int)Math.Clamp(s.Num(st, "bytes", 64), 1, 4096);
        long toUser = s.Kernel.PageRequestsToUser;
        DmaOutcome r;
        try
        {
            r = s.Kernel.Port.ExecuteDma(dev.Rid, pasid, s.Num(st, "iova"), bytes, op);
        }
        catch (InvalidOperationException) when (s.Kernel.PageRequestsToUser > toUser)
        {
            // The device waits for the page response a user fault queue now holds: the DMA
            // finishes (or fails) in the background after FAULT_RESPOND.
            return new CallResult { Word = "FAULT" }.Text("reason", "pageRequestQueued");
        }
        if (r.Faulted) return new CallResult { Word = "FAULT" }.Text("reason", r.Reason.Key());
        return new CallResult()
            .Hex("pa", r.PhysicalAddress)
            .Dec("latency_ns", (ulong)Math.Max(0, r.LatencyPs / 1000))
            .Dec("walk_reads", (ulong)r.WalkReads);
    }

    private static CallResult Advance(ScriptSession s, Statement st)
    {
        ulong ns = s.Num(st, "ns");
        if (ns > long.MaxValue / 1000) return CallResult.Of(Errno.EINVAL);
        s.Kernel.Port.Advance((long)ns * 1000);
        s.Kernel.HandlePageRequests();
        return new CallResult();
    }

    /// <summary>setrlimit(RLIMIT_MEMLOCK) and CAP_IPC_LOCK for the script's process, then its accounting: the limit,
    /// and in 4 KiB pages mm->locked_vm (VmLck), mm->pinned_vm (VmPin) and user->locked_vm.</summary>
    private static CallResult Process(ScriptSession s, Statement st)
    {
        var account = s.Process.Mm.Memlock;
        if (st.Has("cap_ipc_lock"))
        {
            ulong cap = s.Num(st, "cap_ipc_lock");
            if (cap > 1) return CallResult.Of(Errno.EINVAL);
            account.CapIpcLock = cap == 1;
        }
        if (st.Has("memlock"))
        {
            ulong bytes = s.Flags(st, "memlock");
            account.LimitPages = bytes == Mman.RLIM_INFINITY ? MemlockAccount.Unlimited : bytes / UserAddressSpace.PageSize;
        }
        var r = new CallResult();
        if (account.LimitPages == MemlockAccount.Unlimited) r.Text("memlock", "unlimited");
        else r.Hex("memlock", account.LimitPages * UserAddressSpace.PageSize);
        return r.Dec("cap_ipc_lock", account.CapIpcLock ? 1UL : 0UL)
            .Dec("locked_vm", account.MmLockedPages)
            .Dec("pinned_vm", account.PinnedPages)
            .Dec("user_locked_vm", account.UserLockedPages);
    }
}
