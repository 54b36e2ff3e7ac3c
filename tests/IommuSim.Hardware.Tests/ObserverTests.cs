using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Observers;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Tests;

/// <summary>The hooks: what they report, in which order, and that nobody pays for them unless listening.</summary>
public class ObserverTests
{
    /// <summary>Logs every hook with the scheduler time it ran at.</summary>
    private sealed class Log(Platform p) : HardwareObserver
    {
        public readonly List<(string Hook, long Now)> Calls = [];
        public readonly List<(long Issue, long Done)> WalkReads = [];
        public readonly List<(long Start, long End)> LinkTransfers = [];
        public long WalkStart = -1, WalkEnd = -1;
        private void Add(string hook) => Calls.Add((hook, p.Scheduler.Now));

        public override void OnDmaIssued(DmaEngine device, DmaRequest request) => Add("issued");
        public override void OnTlpSent(DmaEngine device, Tlp tlp, long linkArrivalPs) => Add("sent");
        public override void OnLinkTransfer(LinkDirection direction, long startPs, long endPs, int wireBytes, int payloadBytes) => LinkTransfers.Add((startPs, endPs));
        public override void OnRootComplexArrival(Tlp tlp) => Add("rc");
        public override void OnIommuAccepted(Tlp tlp, long lookupDonePs) => Add("accepted");
        public override void OnIotlbMiss(Tlp tlp) => Add("miss");
        public override void OnTranslationFromIotlb(Tlp tlp) => Add("hit");
        public override void OnWalkStarted(int walker, Tlp tlp) { Add("walk"); WalkStart = p.Scheduler.Now; }
        public override void OnWalkRead(int walker, TableStage stage, int level, ulong entryAddress, long issuePs, long donePs) => WalkReads.Add((issuePs, donePs));
        public override void OnWalkFinished(int walker, long startPs, int reads, bool faulted) { Add("walked"); WalkEnd = p.Scheduler.Now; Assert.Equal(WalkStart, startPs); }
        public override void OnFault(Tlp tlp, FaultReason reason) => Add("fault:" + reason.Key());
        public override void OnTranslated(Tlp tlp) => Add("translated");
        public override void OnMemoryAccess(Tlp tlp, long donePs) => Add("memory");
        public override void OnCompletionSent(Tlp tlp, long leaveRootComplexPs, long arrivalPs) => Add("completion");
        public override void OnTlpDone(DmaEngine device, Tlp tlp) => Add("tlpDone");
        public override void OnDmaCompleted(DmaEngine device, DmaRequest request) => Add("completed");
        public override void OnInvalidationSubmitted(in InvalidationDescriptor d, long ticket) => Add("submitted");
        public override void OnInvalidationApplied(in InvalidationDescriptor d, long startPs) => Add("applied");
    }

    [Fact]
    public void A_cold_nested_read_passes_every_stage_in_order_with_its_24_walk_reads()
    {
        // Hooks in a nested 4x4 walk without walk caches: (4+1)(4+1)-1 = 24 reads (Bhargava et al., ASPLOS'08).
        var tp = new TestPlatform();
        tp.SetupNested(4, 4, 0x1000_0000, 0x20_0000, 1 << 20);
        var log = new Log(tp.Platform);
        tp.Platform.AddObserver(log);
        var r = tp.Dma(0x1000_0040, 64, Access.Read);
        Assert.Equal(24, r.WalkReads);
        Assert.Equal(["issued", "sent", "rc", "accepted", "miss", "walk", "walked", "translated", "memory", "completion", "tlpDone", "completed"],
            log.Calls.Select(c => c.Hook));
        Assert.True(log.Calls.Zip(log.Calls.Skip(1)).All(p => p.First.Now <= p.Second.Now), "hooks run in time order");
        Assert.Equal(r.LatencyPs, log.Calls[^1].Now - log.Calls[0].Now);
        // The reads are back to back inside the walk.
        Assert.Equal(24, log.WalkReads.Count);
        Assert.True(log.WalkReads[0].Issue >= log.WalkStart && log.WalkReads[^1].Done == log.WalkEnd);
        Assert.True(log.WalkReads.Zip(log.WalkReads.Skip(1)).All(p => p.First.Done <= p.Second.Issue));
        // Upstream request and downstream completion on the link.
        Assert.Equal(2, log.LinkTransfers.Count);

        log.Calls.Clear();
        tp.Dma(0x1000_0080, 64, Access.Read);
        Assert.Contains(("hit", log.Calls.Single(c => c.Hook == "hit").Now), log.Calls);
        Assert.DoesNotContain(log.Calls, c => c.Hook is "miss" or "walk");
    }

    [Fact]
    public void Faults_and_invalidations_are_reported()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, 0x4000_0000, 0x20_0000, 1 << 20);
        var log = new Log(tp.Platform);
        tp.Platform.AddObserver(log);
        tp.Dma(0x9000_0000);
        Assert.Contains(log.Calls, c => c.Hook == "fault:secondStageNotPresent");
        var iq = tp.Platform.Iommu.Invalidation;
        long ticket = iq.Submit(InvalidationDescriptor.Wait());
        tp.Platform.RunUntil(() => iq.IsComplete(ticket));
        Assert.Equal(["submitted", "applied"], log.Calls.Where(c => c.Hook is "submitted" or "applied").Select(c => c.Hook));
    }

    [Fact]
    public void Nobody_listens_by_default_and_removing_the_last_observer_restores_that()
    {
        var tp = new TestPlatform();
        var dev = tp.Device;
        Assert.Null(dev.Observer);
        Assert.Null(dev.Link.Upstream.Observer);
        Assert.Null(tp.Platform.RootComplex.Observer);
        Assert.Null(tp.Platform.Iommu.Observer);
        Assert.Null(tp.Platform.Iommu.Invalidation.Observer);
        var a = new Log(tp.Platform);
        tp.Platform.AddObserver(a);
        Assert.Same(a, dev.Observer);
        var late = tp.Platform.AddDevice(new DeviceOptions { Name = "dev1", Bdf = "0000:04:00.0" });
        Assert.Same(a, late.Observer);
        Assert.Same(a, late.Link.Downstream.Observer);
        var b = new Log(tp.Platform);
        tp.Platform.AddObserver(b);
        Assert.IsType<ObserverFanout>(dev.Observer);
        tp.Platform.RemoveObserver(a);
        Assert.Same(b, tp.Platform.RootComplex.Observer);
        tp.Platform.RemoveObserver(b);
        Assert.Null(late.Observer);
        Assert.Null(tp.Platform.Iommu.Observer);
    }

    [Fact]
    public void Every_observer_sees_every_event_in_order_of_addition()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, 0x4000_0000, 0x20_0000, 1 << 20);
        var order = new List<string>();
        var a = new Named("a", order);
        var b = new Named("b", order);
        tp.Platform.AddObserver(a);
        tp.Platform.AddObserver(b);
        tp.Dma(0x4000_0000);
        Assert.Equal(["a", "b"], order.Take(2));
        Assert.Equal(order.Count(x => x == "a"), order.Count(x => x == "b"));
        Assert.True(order.Count >= 6);
    }

    private sealed class Named(string name, List<string> order) : HardwareObserver
    {
        public override void OnDmaIssued(DmaEngine device, DmaRequest request) => order.Add(name);
        public override void OnTlpSent(DmaEngine device, Tlp tlp, long linkArrivalPs) => order.Add(name);
        public override void OnTranslated(Tlp tlp) => order.Add(name);
        public override void OnDmaCompleted(DmaEngine device, DmaRequest request) => order.Add(name);
    }

    /// <summary>
    /// The stale-translation tracker, now an observer: a translation served from the IOTLB for a page
    /// software unmapped but did not invalidate counts; an IOTLB invalidation covering the page ends
    /// that, one for another page does not.
    /// </summary>
    [Fact]
    public void Stale_translations_count_until_an_invalidation_covers_the_page()
    {
        var tp = new TestPlatform();
        tp.SetupSecondStage(4, 0x4000_0000, 0x20_0000, 1 << 20);
        var iommu = tp.Platform.Iommu;
        void Invalidate(InvalidationDescriptor d)
        {
            long ticket = iommu.Invalidation.Submit(d);
            tp.Platform.RunUntil(() => iommu.Invalidation.IsComplete(ticket));
        }
        tp.Dma(0x4000_1000);                                   // walk, fills the IOTLB
        Assert.Null(iommu.Observer);                           // nothing noted yet: nobody listens
        iommu.NoteUnmappedPendingInvalidation(tp.Did, 0x4000_1000, 0x1000);
        Assert.NotNull(iommu.Observer);
        tp.Dma(0x4000_1040);
        Assert.Equal(1, iommu.StaleTranslationsUsed);
        Invalidate(InvalidationDescriptor.IotlbPages(tp.Did, 0x4000_3000, 0));   // another page
        tp.Dma(0x4000_1080);
        Assert.Equal(2, iommu.StaleTranslationsUsed);
        Invalidate(InvalidationDescriptor.IotlbPages(tp.Did, 0x4000_0000, 2));   // 4 pages from 0x4000_0000: covers it
        tp.Dma(0x4000_10c0);                                   // walks again (the tables still map it here)
        tp.Dma(0x4000_1100);                                   // an IOTLB hit, no longer stale
        Assert.Equal(2, iommu.StaleTranslationsUsed);
        iommu.Reset();
        Assert.Equal(0, iommu.StaleTranslationsUsed);
    }
}
