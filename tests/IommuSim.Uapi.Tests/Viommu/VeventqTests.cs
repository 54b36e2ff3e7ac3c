using CsCheck;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Uapi.Driver.ArmSmmuV3;
using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>IOMMU_VEVENTQ_ALLOC (iommufd_veventq_alloc), iommufd_viommu_report_event + iommufd_vevent_handler, the read
/// format (iommufd_veventq_fops_read) and arm_vmaster_report_event.</summary>
public class VeventqTests
{
    private static IommuVeventqAlloc Alloc(uint viommu, uint type = IommuVeventqType.ARM_SMMUV3, uint depth = 4) => new() { viommu_id = viommu, type = type, veventq_depth = depth };

    /// <summary>iommufd_veventq_alloc: flags, __reserved and type DEFAULT EOPNOTSUPP, depth 0 EINVAL, then the vIOMMU
    /// (ENOENT), then one per type (EEXIST); another type is a second queue. It holds the vIOMMU.</summary>
    [Fact]
    public void Alloc_checks_in_the_kernels_order()
    {
        var v = new ViommuSim();
        uint viommu = v.Viommu();
        var c = Alloc(99, depth: 0);
        c.flags = 1;
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.VeventqAlloc(c));
        c.flags = 0;
        c.__reserved = 1;
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.VeventqAlloc(c));
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.VeventqAlloc(Alloc(99, type: IommuVeventqType.DEFAULT, depth: 0)));
        Assert.Equal(Errno.EINVAL, v.Ctx.VeventqAlloc(Alloc(99, depth: 0)));
        Assert.Equal(Errno.ENOENT, v.Ctx.VeventqAlloc(Alloc(99)));
        var q = Alloc(viommu);
        Assert.Equal(Errno.OK, v.Ctx.VeventqAlloc(q));
        Assert.NotEqual(0u, q.out_veventq_fd);
        Assert.Equal(Errno.EEXIST, v.Ctx.VeventqAlloc(Alloc(viommu)));
        Assert.Equal(Errno.OK, v.Ctx.VeventqAlloc(Alloc(viommu, IommuVeventqType.TEGRA241_CMDQV)));
        Assert.Equal(Errno.EBUSY, v.Destroy(viommu));
        Assert.Equal(Errno.EBUSY, v.Destroy(q.out_veventq_id));      // its open fd holds it (iommufd_eventq_init)
        Assert.Equal(Errno.OK, v.S.Process.Close((int)q.out_veventq_fd));
        Assert.Equal(Errno.OK, v.Destroy(q.out_veventq_id));
        Assert.Equal(Errno.OK, v.Ctx.VeventqAlloc(Alloc(viommu)));
    }

    private static byte[] Record(byte b) => Enumerable.Repeat(b, 32).ToArray();

    /// <summary>Depth 2, four events: the first two are read with sequence 0 and 1, then the lost-events header (no data)
    /// with sequence 3, the index of the last lost event; the next event after the read continues at 4.</summary>
    [Fact]
    public void Overflow_leaves_one_lost_events_header_at_the_tail()
    {
        var v = new ViommuSim();
        var viommu = (Iommufd.Viommu)v.Ctx.Lookup(v.Viommu())!;
        var q = Alloc(viommu.Id, depth: 2);
        Assert.Equal(Errno.OK, v.Ctx.VeventqAlloc(q));
        for (byte i = 0; i < 4; i++) Assert.Equal(Errno.OK, viommu.ReportEvent(IommuVeventqType.ARM_SMMUV3, Record(i)));
        var events = new List<Vevent>();
        Assert.Equal(Errno.OK, v.Ctx.VeventqRead(q.out_veventq_id, 4096, events, out ulong done));
        Assert.Equal([(0u, 0u), (0u, 1u), (IommuVeventqFlag.LOST_EVENTS, 3u)], events.Select(e => (e.Header.flags, e.Header.sequence)));
        Assert.Equal(2 * (8 + 32) + 8UL, done);
        Assert.Equal(Record(1), events[1].Data);
        Assert.Empty(events[2].Data);
        Assert.Equal(Errno.OK, viommu.ReportEvent(IommuVeventqType.ARM_SMMUV3, Record(9)));
        Assert.Equal(Errno.OK, v.Ctx.VeventqRead(q.out_veventq_id, 4096, events, out _));
        Assert.Equal(4u, events.Single().Header.sequence);
    }

    /// <summary>iommufd_veventq_fops_read takes whole vEVENTs only: a count smaller than the next one returns 0 bytes and
    /// leaves it queued; a lost-events header needs only its 8 bytes.</summary>
    [Fact]
    public void Read_takes_whole_events()
    {
        var v = new ViommuSim();
        var viommu = (Iommufd.Viommu)v.Ctx.Lookup(v.Viommu())!;
        var q = Alloc(viommu.Id, depth: 1);
        Assert.Equal(Errno.OK, v.Ctx.VeventqAlloc(q));
        viommu.ReportEvent(IommuVeventqType.ARM_SMMUV3, Record(1));
        viommu.ReportEvent(IommuVeventqType.ARM_SMMUV3, Record(2)); // lost
        var events = new List<Vevent>();
        Assert.Equal(Errno.OK, v.Ctx.VeventqRead(q.out_veventq_id, 39, events, out ulong done));
        Assert.Equal(0UL, done);
        Assert.Equal(Errno.OK, v.Ctx.VeventqRead(q.out_veventq_id, 47, events, out done));
        Assert.Equal(40UL, done);
        Assert.Equal(Errno.OK, v.Ctx.VeventqRead(q.out_veventq_id, 8, events, out done));
        Assert.Equal((IommuVeventqFlag.LOST_EVENTS, 1u), (events.Single().Header.flags, events.Single().Header.sequence));
        Assert.Equal(Errno.ESPIPE, ((Veventq)v.Ctx.Lookup(q.out_veventq_id)!).Read(64, 1, events, out _));
    }

    /// <summary>Sequence indexes as a property: for any depth and any interleaving of reports and reads, what user space
    /// reads is strictly increasing, data events never exceed the depth in flight, and the gaps plus the events read
    /// account for every event reported.</summary>
    [Fact]
    public void Sequences_account_for_every_event()
    {
        Gen.Select(Gen.UInt[1, 6], Gen.Int[0, 3].Array[1, 40]).Sample((depth, script) =>
        {
            var v = new ViommuSim();
            var viommu = (Iommufd.Viommu)v.Ctx.Lookup(v.Viommu())!;
            var q = Alloc(viommu.Id, depth: depth);
            Assert.Equal(Errno.OK, v.Ctx.VeventqAlloc(q));
            int reported = 0;
            var seen = new List<(uint Flags, uint Seq)>();
            var events = new List<Vevent>();
            foreach (int step in script.Append(0))
            {
                if (step > 0) { viommu.ReportEvent(IommuVeventqType.ARM_SMMUV3, Record((byte)reported)); reported++; continue; }
                v.Ctx.VeventqRead(q.out_veventq_id, 1 << 20, events, out _);
                seen.AddRange(events.Select(e => (e.Header.flags, e.Header.sequence)));
            }
            var data = seen.Where(s => s.Flags == 0).Select(s => s.Seq).ToList();
            Assert.Equal(data.OrderBy(x => x), data);
            Assert.Equal(data.Distinct().Count(), data.Count);
            // Every reported event is either read or covered by a lost-events header (a gap before a later sequence).
            uint next = seen.Count == 0 ? 0 : seen.Max(s => s.Seq) + 1;
            Assert.Equal((uint)reported, next);
        });
    }

    /// <summary>arm_vmaster_report_event: the record's StreamID becomes the master's vSID; with no vEVENTQ of the type the
    /// report is EOPNOTSUPP (iommufd_viommu_report_event).</summary>
    [Fact]
    public void Arm_event_carries_the_vsid()
    {
        var v = new ViommuSim();
        uint id = v.Viommu();
        var vsmmu = (ArmVsmmu)((Iommufd.Viommu)v.Ctx.Lookup(id)!).DriverData!;
        Span<ulong> evt = stackalloc ulong[4];
        new SmmuEvent(SmmuEventType.Translation, Sim.Dev3.Value, 0, false, 0x10_0040, true, false, SmmuEventClass.Input, 0, false, 0).Encode(evt);
        Assert.Equal(Errno.EOPNOTSUPP, vsmmu.ReportEvent(0x18, evt));
        var q = Alloc(id);
        Assert.Equal(Errno.OK, v.Ctx.VeventqAlloc(q));
        Assert.Equal(Errno.OK, vsmmu.ReportEvent(0x18, evt));
        var events = new List<Vevent>();
        v.Ctx.VeventqRead(q.out_veventq_id, 4096, events, out _);
        var d = events.Single().Data;
        var got = SmmuEvent.Decode([BitConverter.ToUInt64(d, 0), BitConverter.ToUInt64(d, 8), BitConverter.ToUInt64(d, 16), BitConverter.ToUInt64(d, 24)]);
        Assert.Equal((SmmuEventType.Translation, 0x18u, 0x10_0040UL), (got.Type, got.Sid, got.InputAddress));
    }
}
