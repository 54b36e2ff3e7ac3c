using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.PageTables;

namespace IommuSim.Hardware.Tests;

public class AtsAndLinkTests
{
    private const ulong Iova = 0x4000_0000, Pa = 0x8000_0000;

    private static TestPlatform Ats(int entries = 32, bool pri = false)
        => new(device: d => { d.Ats.Enabled = true; d.Ats.Entries = entries; d.Ats.Pri = pri; });

    [Fact]
    public void With_ats_only_translation_requests_reach_the_iotlb()
    {
        var tp = Ats();
        tp.SetupSecondStage(4, Iova, Pa, 0x10000);
        for (int i = 0; i < 8; i++) Assert.False(tp.Dma(Iova + (ulong)(i * 64)).Faulted);
        Assert.Equal(1, tp.Device.Ats.TranslationRequests);
        Assert.Equal(1, tp.Platform.Iommu.Iotlb.Lookups);     // the translation request only
        Assert.Equal(8, tp.Device.Ats.AtcLookups);
        Assert.Equal(7, tp.Device.Ats.AtcHits);
        var r = tp.Dma(Iova + 0x100);
        Assert.Equal(Pa + 0x100, r.PhysicalAddress);
    }

    [Fact]
    public void Device_tlb_invalidation_removes_atc_entries_and_costs_the_round_trip()
    {
        var tp = Ats();
        tp.SetupSecondStage(4, Iova, Pa, 0x10000);
        tp.Dma(Iova);
        tp.Dma(Iova + 0x1000);
        var iq = tp.Platform.Iommu.Invalidation;
        long t0 = tp.Platform.Scheduler.Now;
        iq.Submit(InvalidationDescriptor.DeviceTlb(tp.Rid.Value, Iova, 0));
        long w = iq.Submit(InvalidationDescriptor.Wait());
        tp.Platform.RunUntil(() => iq.IsComplete(w));
        // 2 descriptors × 64 cycles at 1.5 GHz + the 1000 ns device round trip (+ up to one cycle of edge alignment).
        long expected = 2 * 64 * 1_000_000 / 1500 + 1_000_000;
        Assert.InRange(tp.Platform.Scheduler.Now - t0, expected - 1, expected + 667);
        Assert.Equal(1, tp.Device.Ats.AtcInvalidatedEntries);
        long trs = tp.Device.Ats.TranslationRequests;
        tp.Dma(Iova + 0x1000); // still cached
        Assert.Equal(trs, tp.Device.Ats.TranslationRequests);
        tp.Dma(Iova);          // invalidated: asks again
        Assert.Equal(trs + 1, tp.Device.Ats.TranslationRequests);
    }

    [Fact]
    public void Atc_capacity_and_lru_replacement()
    {
        var tp = Ats(entries: 2);
        tp.SetupSecondStage(4, Iova, Pa, 0x10000);
        tp.Dma(Iova); tp.Dma(Iova + 0x1000); tp.Dma(Iova);   // A B A
        tp.Dma(Iova + 0x2000);                              // C evicts B
        long trs = tp.Device.Ats.TranslationRequests;
        tp.Dma(Iova);                                       // A hit
        Assert.Equal(trs, tp.Device.Ats.TranslationRequests);
        tp.Dma(Iova + 0x1000);                              // B miss
        Assert.Equal(trs + 1, tp.Device.Ats.TranslationRequests);
    }

    [Fact]
    public void Without_pri_a_failed_translation_faults_the_request()
    {
        var tp = Ats();
        tp.SetupSecondStage(4, Iova, Pa, 0x1000);
        var r = tp.Dma(Iova + 0x5000);
        Assert.True(r.Faulted);
        Assert.Equal(1, tp.Device.Ats.TranslationFailures);
        Assert.Equal(0, tp.Device.Ats.PageRequests);
    }

    [Fact]
    public void Pri_page_request_then_page_response_resumes_the_dma()
    {
        var tp = Ats(pri: true);
        tp.SetupSecondStage(4, Iova, Pa, 0x1000);
        var p = tp.Platform;
        // Software: on a page request, map the page, then answer SUCCESS through the invalidation queue.
        p.Iommu.PageRequestArrived += () =>
        {
            Assert.True(p.Iommu.PageRequests.TryRead(out var pr));
            tp.Stage2!.Map(pr.Address & ~0xFFFUL, Pa + 0x10_0000, 0x1000, Access.ReadWrite);
            p.Iommu.Invalidation.Submit(new InvalidationDescriptor(InvalidationType.PageGroupResponse,
                RequesterId: pr.RequesterId, PageGroupIndex: pr.PageGroupIndex, ResponseCode: PageResponseCode.Success));
        };
        var r = tp.Dma(Iova + 0x7000 + 0x40);
        Assert.False(r.Faulted);
        Assert.Equal(Pa + 0x10_0000 + 0x40, r.PhysicalAddress);
        Assert.Equal(1, tp.Device.Ats.PageRequests);
        Assert.Equal(1, tp.Device.Ats.PageResponses);
        Assert.Equal(2, tp.Device.Ats.TranslationRequests);
    }

    [Fact]
    public void Pri_invalid_response_fails_the_request()
    {
        var tp = Ats(pri: true);
        tp.SetupSecondStage(4, Iova, Pa, 0x1000);
        var p = tp.Platform;
        p.Iommu.PageRequestArrived += () =>
        {
            p.Iommu.PageRequests.TryRead(out var pr);
            p.Iommu.Invalidation.Submit(new InvalidationDescriptor(InvalidationType.PageGroupResponse,
                RequesterId: pr.RequesterId, PageGroupIndex: pr.PageGroupIndex, ResponseCode: PageResponseCode.Invalid));
        };
        var r = tp.Dma(Iova + 0x7000);
        Assert.True(r.Faulted);
        Assert.Equal(FaultReason.PageResponseFailure, r.Reason);
    }

    [Fact]
    public void Posted_credit_exhaustion_stalls_the_device_until_the_iommu_drains()
    {
        // A tiny IOMMU input queue and two posted credits: the root port holds TLPs, credits run out.
        var tp = new TestPlatform(tweak: o => o.InputQueueDepth = 1, pcie: p => p.PostedCredits = 2,
            device: d => d.MaxOutstanding = 8);
        tp.SetupSecondStage(4, Iova, Pa, 0x10000);
        var dev = tp.Device;
        for (int i = 0; i < 8; i++)
        {
            var r = dev.Rent();
            r.Iova = Iova + (ulong)(i * 0x1000);
            r.Bytes = 256;
            r.IsWrite = true;
            dev.Issue(r);
        }
        tp.Platform.RunUntil(() => dev.Outstanding == 0);
        Assert.True(dev.Stats.CreditStalls > 0);
        Assert.True(tp.Platform.Iommu.InputQueueFullRefusals > 0);
        Assert.Equal(8, tp.Platform.Iommu.Translations);
    }

    [Fact]
    public void Read_completions_split_at_the_read_completion_boundary()
    {
        var tp = new TestPlatform(pcie: p => { p.MaxPayloadBytes = 256; p.ReadCompletionBoundary = 64; p.MaxReadRequestBytes = 512; });
        tp.SetupSecondStage(4, Iova, Pa, 0x10000);
        var link = tp.Device.Link;
        long before = link.Downstream.Tlps;
        // 512-byte read starting 32 bytes into a 64-byte block: 32 (to the RCB) + 256 + 224.
        tp.Dma(Iova + 0x20, 512, Access.Read);
        Assert.Equal(3, link.Downstream.Tlps - before);
        Assert.Equal(512, link.Downstream.PayloadBytes);
    }

    [Fact]
    public void Requests_split_into_tlps_at_mps_mrrs_and_4k_boundaries()
    {
        var tp = new TestPlatform(pcie: p => { p.MaxPayloadBytes = 128; p.MaxReadRequestBytes = 512; });
        tp.SetupSecondStage(4, Iova, Pa, 0x10000);
        var up = tp.Device.Link.Upstream;
        long before = up.Tlps;
        tp.Dma(Iova + 0xF80, 512, Access.Write); // 128 up to the 4K boundary, then 3 × 128
        Assert.Equal(4, up.Tlps - before);
        before = up.Tlps;
        tp.Dma(Iova + 0x1E00, 2048, Access.Read); // 512 to the boundary, then 3 × 512
        Assert.Equal(4, up.Tlps - before);
    }
}
