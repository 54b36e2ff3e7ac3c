using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.DmaApi;

public class KernelDmaApiTests
{
    private sealed class Client : IDmaApiClient
    {
        public readonly List<(long Tag, ulong Iova)> Mapped = [];
        public readonly List<long> Unmapped = [];
        public void OnMapped(long tag, ulong iova) => Mapped.Add((tag, iova));
        public void OnUnmapped(long tag) => Unmapped.Add(tag);
    }

    private static (Platform P, KernelDmaApi Api, DmaEngine Dev) Setup(string mode, int flushEntries = 4)
    {
        var p = new Platform(new MemoryOptions(), new PcieOptions(), new IommuOptions(), true, 1);
        var dev = p.AddDevice(new DeviceOptions { Name = "nic0", Bdf = "0000:03:00.0" });
        // The host kernel's default domain for the device, attached by the driver (context + PASID entry).
        var port = new PlatformPort(p);
        var kernel = new IommuKernel(port, PlatformPort.SpecFor(p));
        var domain = kernel.Vtd!.AllocPagingDomain(nestParent: false, dirtyTracking: false);
        Assert.Equal(Errno.OK, kernel.Vtd!.SetDevicePasid(kernel.Devices[0], 0, domain, null));
        ulong buffers = p.Frames.AllocateContiguous(1 << 20, 1 << 21);
        var target = MappingTargets.ForKernelDomain(domain, new MappingWindow(buffers, 1 << 20, 0x10_0000_0000, 1UL << 32));
        var api = new KernelDmaApi(port, DmaApiCosts.FromNs(mode, 200, 150, 100, 1500, 400, flushEntries, 50));
        api.Register(dev, target);
        return (p, api, dev);
    }

    private static ulong MapOne(Platform p, KernelDmaApi api, DmaEngine dev, Client c, long tag)
    {
        int before = c.Mapped.Count;
        api.Map(dev, 2048, Access.ReadWrite, c, tag);
        p.RunUntil(() => c.Mapped.Count > before);
        return c.Mapped[^1].Iova;
    }

    [Fact]
    public void Strict_unmap_returns_only_after_the_invalidation_so_dma_then_faults()
    {
        var (p, api, dev) = Setup("strict");
        var c = new Client();
        ulong iova = MapOne(p, api, dev, c, 1);
        Assert.False(p.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
        long t0 = p.Scheduler.Now;
        api.Unmap(dev, iova, 2048, c, 1);
        p.RunUntil(() => c.Unmapped.Count == 1);
        // unmap cost + submit cost + two descriptors' hardware time.
        Assert.True(p.Scheduler.Now - t0 >= 250_000 + 2 * 64 * 1_000_000 / 1500);
        Assert.True(p.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
        Assert.Equal(0, p.Iommu.StaleTranslationsUsed);
        Assert.Equal(2, api.Stats.InvalidationDescriptors);
    }

    [Fact]
    public void Lazy_unmap_leaves_a_stale_window_until_the_flush()
    {
        var (p, api, dev) = Setup("lazy", flushEntries: 4);
        var c = new Client();
        ulong iova = MapOne(p, api, dev, c, 1);
        Assert.False(p.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
        api.Unmap(dev, iova, 2048, c, 1);
        p.RunUntil(() => c.Unmapped.Count == 1);
        // The IOTLB still translates the unmapped IOVA: a use-after-unmap window.
        Assert.False(p.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
        Assert.Equal(1, p.Iommu.StaleTranslationsUsed);
        // The flush timer (50 µs) closes it.
        p.RunUntil(() => api.Stats.Flushes == 1 && p.Iommu.Invalidation.Idle);
        Assert.True(p.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
    }

    /// <summary>
    /// dma-iommu.c keeps one flush timer per DMA domain (cookie->fq_timer; queue_iova arms it when fq_timer_on is
    /// clear) and fq_flush_timeout runs one fq_flush_iotlb, then fq_ring_free on every CPU: lazy unmaps on four CPUs
    /// of one device are closed by a single timer flush, and their IOVAs are reusable only after it completes.
    /// </summary>
    [Fact]
    public void Lazy_flush_timer_is_one_per_domain_and_frees_every_cpus_queue()
    {
        var (p, api, dev) = Setup("lazy", flushEntries: 64);
        var c = new Client();
        var iovas = new List<ulong>();
        for (int cpu = 0; cpu < 4; cpu++)
        {
            int before = c.Mapped.Count;
            api.Map(dev, 2048, Access.ReadWrite, c, cpu, cpu);
            p.RunUntil(() => c.Mapped.Count > before);
            iovas.Add(c.Mapped[^1].Iova);
            Assert.False(p.ExecuteDma(dev.RequesterId, null, iovas[^1], 64, Access.Write).Faulted);
        }
        for (int cpu = 0; cpu < 4; cpu++) api.Unmap(dev, iovas[cpu], 2048, c, cpu, cpu);
        p.RunUntil(() => c.Unmapped.Count == 4);
        Assert.Equal(0, api.Stats.Flushes);
        p.RunUntil(() => api.Stats.Flushes > 0 && p.Iommu.Invalidation.Idle);
        p.RunUntil(() => p.Scheduler.Now > 200_000_000); // well past a second timeout, had any CPU armed its own
        Assert.Equal(1, api.Stats.Flushes);
        foreach (ulong iova in iovas) Assert.True(p.ExecuteDma(dev.RequesterId, null, iova, 64, Access.Write).Faulted);
        // Every CPU's IOVA went back to that CPU's rcache: each CPU's next map reuses its own.
        for (int cpu = 0; cpu < 4; cpu++)
        {
            int before = c.Mapped.Count;
            api.Map(dev, 2048, Access.ReadWrite, c, 10 + cpu, cpu);
            p.RunUntil(() => c.Mapped.Count > before);
            Assert.Equal(iovas[cpu], c.Mapped[^1].Iova);
        }
    }

    /// <summary>
    /// fq_flush_iotlb counts flushes per domain (fq_flush_start_cnt / fq_flush_finish_cnt) and fq_ring_free frees
    /// every entry queued before the last finished flush: when CPU 0's full queue flushes the domain, CPU 1's earlier
    /// unmaps are covered too and are freed at CPU 1's next unmap (queue_iova), without a flush of its own.
    /// </summary>
    [Fact]
    public void A_full_queue_flush_on_one_cpu_frees_the_other_cpus_earlier_entries()
    {
        var (p, api, dev) = Setup("lazy", flushEntries: 4);
        var c = new Client();
        ulong Map(int cpu, long tag)
        {
            int before = c.Mapped.Count;
            api.Map(dev, 2048, Access.ReadWrite, c, tag, cpu);
            p.RunUntil(() => c.Mapped.Count > before);
            return c.Mapped[^1].Iova;
        }
        void Unmap(int cpu, ulong iova, long tag)
        {
            int before = c.Unmapped.Count;
            api.Unmap(dev, iova, 2048, c, tag, cpu);
            p.RunUntil(() => c.Unmapped.Count > before);
        }
        ulong early = Map(1, 100);
        Unmap(1, early, 100);                       // CPU 1: one entry queued, counter 0
        var cpu0 = Enumerable.Range(0, 4).Select(i => Map(0, i)).ToList();
        foreach (var (iova, i) in cpu0.Select((v, i) => (v, i))) Unmap(0, iova, i);
        Assert.Equal(1, api.Stats.Flushes);         // CPU 0's queue filled: one domain-wide flush
        Assert.True(p.ExecuteDma(dev.RequesterId, null, early, 64, Access.Write).Faulted);
        ulong other = Map(1, 101);
        Assert.NotEqual(early, other);              // CPU 1 has not run fq_ring_free yet
        Unmap(1, other, 101);                       // queue_iova frees `early` first, then queues `other`
        Assert.Equal(1, api.Stats.Flushes);
        Assert.Equal(early, Map(1, 102));           // back in CPU 1's rcache, reused without a second flush
    }

    [Fact]
    public void Lazy_flushes_when_the_queue_fills_and_reuses_iovas_only_after_it()
    {
        var (p, api, dev) = Setup("lazy", flushEntries: 4);
        var c = new Client();
        var iovas = new List<ulong>();
        for (int i = 0; i < 4; i++) iovas.Add(MapOne(p, api, dev, c, i));
        for (int i = 0; i < 3; i++) api.Unmap(dev, iovas[i], 2048, c, i);
        p.RunUntil(() => c.Unmapped.Count == 3);
        Assert.Equal(0, api.Stats.Flushes);
        ulong fresh = MapOne(p, api, dev, c, 9);
        Assert.DoesNotContain(fresh, iovas); // not reused before the flush
        api.Unmap(dev, iovas[3], 2048, c, 3);
        p.RunUntil(() => c.Unmapped.Count == 4);
        Assert.Equal(1, api.Stats.Flushes);
        Assert.Contains(MapOne(p, api, dev, c, 10), iovas);
    }

    [Fact]
    public void None_mode_recycles_mapped_buffers_without_invalidations()
    {
        var (p, api, dev) = Setup("none");
        var c = new Client();
        ulong a = MapOne(p, api, dev, c, 1);
        api.Unmap(dev, a, 2048, c, 1);
        p.RunUntil(() => c.Unmapped.Count == 1);
        Assert.Equal(a, MapOne(p, api, dev, c, 2));
        Assert.Equal(0, api.Stats.InvalidationDescriptors);
        Assert.False(p.ExecuteDma(dev.RequesterId, null, a, 64, Access.Write).Faulted);
    }

    [Fact]
    public void Calls_on_one_device_are_serialised_on_its_driver_cpu()
    {
        var (p, api, dev) = Setup("strict");
        var c = new Client();
        long t0 = p.Scheduler.Now;
        for (int i = 0; i < 5; i++) api.Map(dev, 4096, Access.ReadWrite, c, i);
        p.RunUntil(() => c.Mapped.Count == 5);
        Assert.Equal(5 * 200_000, p.Scheduler.Now - t0);
        Assert.Equal([0L, 1, 2, 3, 4], c.Mapped.Select(m => m.Tag));
    }
}
