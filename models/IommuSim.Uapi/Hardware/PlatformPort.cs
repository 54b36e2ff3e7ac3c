using IommuSim.Engine.Scheduling;
using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Uapi.Hardware;

/// <summary>
/// <see cref="IHardwarePort"/> over the simulated <see cref="Platform"/>: invalidations go through
/// the IOMMU's queued-invalidation interface; a submission's waiter is called when its wait
/// descriptor completes, and "wait" runs the scheduler until then, exactly as a driver spins on
/// the wait status.
/// </summary>
public sealed class PlatformPort : IHardwarePort
{
    // Waits in flight: (ticket, waiter, cookie). A list of structs, so steady-state submissions allocate nothing.
    private readonly List<(long Ticket, IInvalidationWaiter Waiter, long Cookie)> _waits = [];

    public PlatformPort(Platform platform)
    {
        Platform = platform;
        platform.Iommu.Invalidation.Completed += OnInvalidationCompleted;
    }

    public Platform Platform { get; }
    public PhysicalMemory Memory => Platform.Memory;
    public FrameAllocator Frames => Platform.Frames;
    public TranslationTables Tables => Platform.Iommu.Tables;
    public FaultLog Faults => Platform.Iommu.Faults;
    public PageRequestQueue PageRequests => Platform.Iommu.PageRequests;
    public long NowPs => Platform.Scheduler.Now;
    public Scheduler Scheduler => Platform.Scheduler;

    public long Submit(ReadOnlySpan<InvalidationDescriptor> descriptors, IInvalidationWaiter? waiter, long cookie)
    {
        var queue = Platform.Iommu.Invalidation;
        foreach (ref readonly var d in descriptors) queue.Submit(d);
        long ticket = queue.Submit(InvalidationDescriptor.Wait());
        if (waiter is not null) _waits.Add((ticket, waiter, cookie));
        return ticket;
    }

    public void SubmitAndWait(ReadOnlySpan<InvalidationDescriptor> descriptors)
    {
        var queue = Platform.Iommu.Invalidation;
        long ticket = Submit(descriptors, null, 0);
        Platform.RunUntil(() => queue.IsComplete(ticket));
        if (!queue.IsComplete(ticket)) throw new InvalidOperationException("invalidation wait did not complete");
    }

    public void Post(ReadOnlySpan<InvalidationDescriptor> descriptors)
    {
        foreach (ref readonly var d in descriptors) Platform.Iommu.Invalidation.Submit(d);
    }

    public void NoteUnmappedPendingInvalidation(ushort did, ulong iova, ulong bytes)
        => Platform.Iommu.NoteUnmappedPendingInvalidation(did, iova, bytes);

    private void OnInvalidationCompleted(long ticket)
    {
        // Latest submission first, as the waits were polled before the port had them.
        for (int i = _waits.Count - 1; i >= 0; i--)
        {
            var w = _waits[i];
            if (w.Ticket > ticket) continue;
            _waits.RemoveAt(i);
            w.Waiter.OnInvalidationWaitDone(w.Cookie);
        }
    }

    public event Action PageRequestArrived
    {
        add => Platform.Iommu.PageRequestArrived += value;
        remove => Platform.Iommu.PageRequestArrived -= value;
    }

    public DmaOutcome ExecuteDma(RequesterId rid, uint? pasid, ulong iova, int bytes, Access op)
    {
        var r = Platform.ExecuteDma(rid, pasid, iova, bytes, op);
        return new DmaOutcome(r.Faulted, r.Reason, r.PhysicalAddress, r.LatencyPs, r.WalkReads);
    }

    public void Advance(long picoseconds)
    {
        long until = Platform.Scheduler.Now + picoseconds;
        Platform.Scheduler.Run(untilTime: until);
    }

    /// <summary>
    /// A platform with the devices of <paramref name="spec"/> on their own links and default
    /// timing: what `iommusim uapi` uses when the script names no config.
    /// </summary>
    public static Platform CreatePlatform(PlatformSpec spec, IommuOptions? iommu = null, ulong seed = 1)
    {
        var platform = new Platform(new MemoryOptions(), new PcieOptions(), iommu ?? new IommuOptions(), iommuOnPath: true, seed);
        foreach (var d in spec.Devices)
        {
            platform.AddDevice(new DeviceOptions
            {
                Name = d.Rid.ToString(),
                Bdf = d.Rid.ToString(),
                IommuGroup = d.IommuGroup,
                PasidBits = d.PasidBits,
                Ats = new AtsOptions { Enabled = d.Ats, Pri = d.PageRequests },
            });
        }
        return platform;
    }

    /// <summary>The devices of an existing platform as the kernel sees them (group defaults as in the config: own group, numbered in list order).</summary>
    public static PlatformSpec SpecFor(Platform platform, PlatformSpec? template = null)
    {
        var devices = new List<DeviceSpec>();
        for (int i = 0; i < platform.Devices.Count; i++)
        {
            var o = platform.Devices[i].Options;
            devices.Add(new DeviceSpec(o.RequesterId, o.IommuGroup ?? i, o.Ats.Enabled, o.PasidBits, PageRequests: o.Ats.Pri));
        }
        return (template ?? new PlatformSpec()) with { Devices = devices };
    }
}
