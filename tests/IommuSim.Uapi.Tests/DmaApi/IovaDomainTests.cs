using IommuSim.Hardware;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Hardware.Iommu.Tables;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Pcie;
using IommuSim.Uapi.DmaApi;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// KernelDmaApi with Linux's IOVA domain: one iova_domain per DMA domain shared by the CPUs
/// (iommu_dma_init_domain), batched contiguous IOVAs, and the unmap IH hint as intel_iommu_tlb_sync sets it.
/// </summary>
public class IovaDomainTests
{
    private const ulong Window = 0x10_0000_0000;
    private const ulong WindowBytes = 1UL << 32;
    private const ulong Top = Window + WindowBytes;

    private sealed class Client : IDmaApiClient
    {
        public readonly List<ulong> Mapped = [];
        public int Unmapped;
        public void OnMapped(long tag, ulong iova) => Mapped.Add(iova);
        public void OnUnmapped(long tag) => Unmapped++;
    }

    private static (Platform P, KernelDmaApi Api, DmaEngine Dev, IMappingTarget T) Setup(bool kernelHint = false)
    {
        var p = new Platform(new MemoryOptions(), new PcieOptions(), new IommuOptions(), true, 1);
        var dev = p.AddDevice(new DeviceOptions { Name = "nic0", Bdf = "0000:03:00.0" });
        // The host kernel's default domain for the device, attached by the driver (context + PASID entry).
        var port = new PlatformPort(p);
        var kernel = new IommuKernel(port, PlatformPort.SpecFor(p));
        var domain = kernel.Vtd!.AllocPagingDomain(nestParent: false, dirtyTracking: false);
        Assert.Equal(Errno.OK, kernel.Vtd!.SetDevicePasid(kernel.Devices[0], 0, domain, null));
        ulong buffers = p.Frames.AllocateContiguous(8 << 20, 1 << 21);
        var target = MappingTargets.ForKernelDomain(domain, new MappingWindow(buffers, 8 << 20, Window, WindowBytes),
            kernelHint ? InvalidationHint.Kernel : InvalidationHint.Never);
        var api = new KernelDmaApi(p, DmaApiCosts.FromNs("strict", 200, 150, 100, 1500, 400, 256, 50));
        api.Register(dev, target);
        return (p, api, dev, target);
    }

    [Fact]
    public void The_cpus_of_a_device_share_one_domain_allocating_top_down()
    {
        // Before: each CPU had its own slice of the window. Linux: one iova_domain, alloc_iova_fast from the
        // top (limit_pfn) whatever the CPU, so two CPUs' buffers interleave in one region.
        var (p, api, dev, _) = Setup();
        var c = new Client();
        for (int i = 0; i < 4; i++)
        {
            api.Map(dev, 4096, Access.Write, c, i, cpu: i & 1);
            p.RunUntil(() => c.Mapped.Count == i + 1);
        }
        Assert.Equal(new[] { Top - 0x1000, Top - 0x2000, Top - 0x3000, Top - 0x4000 }, c.Mapped);
    }

    [Fact]
    public void A_strict_unmap_returns_the_iova_to_its_cpu_magazine()
    {
        // __iommu_dma_unmap → iommu_dma_free_iova → free_iova_fast on this CPU; its next map pops it.
        var (p, api, dev, _) = Setup();
        var c = new Client();
        api.Map(dev, 4096, Access.Write, c, 0, cpu: 3);
        p.RunUntil(() => c.Mapped.Count == 1);
        api.Unmap(dev, c.Mapped[0], 4096, c, 0, cpu: 3);
        p.RunUntil(() => c.Unmapped == 1);
        api.Map(dev, 4096, Access.Write, c, 1, cpu: 4);
        api.Map(dev, 4096, Access.Write, c, 2, cpu: 3);
        p.RunUntil(() => c.Mapped.Count == 3);
        Assert.Equal(Top - 0x2000, c.Mapped[1]); // CPU 4: nothing cached, the rbtree
        Assert.Equal(c.Mapped[0], c.Mapped[2]);   // CPU 3: its magazine
    }

    [Theory]
    [InlineData(8, 4096)]
    [InlineData(4, 2048)]  // sub-page buffers still start on their own page
    [InlineData(32, 4096)] // 32 pages: the largest cached size class
    public void A_batch_is_one_contiguous_size_aligned_range_unmapped_with_one_invalidation(int count, int bytesEach)
    {
        var (p, api, dev, _) = Setup();
        var c = new Client();
        api.MapBatch(dev, count, bytesEach, Access.Write, c, 0, cpu: 0);
        p.RunUntil(() => c.Mapped.Count == 1);
        ulong iova = c.Mapped[0];
        Assert.Equal(0UL, iova % ((ulong)count * 4096));
        for (int k = 0; k < count; k++)
            Assert.False(p.ExecuteDma(dev.RequesterId, null, iova + (ulong)k * 4096, 64, Access.Write).Faulted);
        Assert.Equal(1, api.Stats.Maps);
        api.UnmapBatch(dev, iova, count, bytesEach, c, 0, cpu: 0);
        p.RunUntil(() => c.Unmapped == 1);
        Assert.Equal(2, api.Stats.InvalidationDescriptors); // one page-selective IOTLB invalidation + the wait
        for (int k = 0; k < count; k++)
            Assert.True(p.ExecuteDma(dev.RequesterId, null, iova + (ulong)k * 4096, 64, Access.Write).Faulted);
    }

    private sealed class Recycler(KernelDmaApi api, DmaEngine dev) : IDmaApiClient
    {
        public long Done;
        // Each mapped buffer is unmapped at once on the same CPU (tag = CPU); each unmap maps a new one.
        public void OnMapped(long tag, ulong iova) => api.Unmap(dev, iova, 4096, this, tag, (int)tag);
        public void OnUnmapped(long tag) { Done++; api.Map(dev, 4096, Access.Write, this, tag, (int)tag); }
    }

    [Fact]
    public void Strict_map_unmap_cycles_on_several_cpus_allocate_nothing_once_warm()
    {
        var (p, api, dev, _) = Setup(kernelHint: true);
        var r = new Recycler(api, dev);
        for (int cpu = 0; cpu < 4; cpu++) api.Map(dev, 4096, Access.Write, r, cpu, cpu);
        Func<bool> warm = () => r.Done >= 4000, measured = () => r.Done >= 12000;
        p.RunUntil(warm);
        long before = GC.GetAllocatedBytesForCurrentThread();
        p.RunUntil(measured);
        long bytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(bytes < 8000, $"{bytes} bytes for 8000 map/unmap pairs");
    }

    /// <summary>intel_iommu_tlb_sync: <c>ih = list_empty(&amp;gather-&gt;freelist)</c>; dma_pte_clear_level frees a
    /// lower table only when the unmapped range covers all of it.</summary>
    [Theory]
    [InlineData(0x1000UL, 0x1000UL, true, true)]       // one page: no table freed → IH = 1
    [InlineData(0x200000UL, 0x200000UL, true, false)]  // a whole 2 MiB-aligned leaf table: freed → IH = 0
    [InlineData(0x1000UL, 0x1FF000UL, true, true)]     // empties the table but does not cover it: kept → IH = 1
    [InlineData(0x1000UL, 0x1000UL, false, false)]     // hint off (translation.dmaApi.invalidationHint = never)
    public void The_kernel_hint_is_set_exactly_when_no_page_table_page_was_freed(ulong offset, ulong bytes, bool kernelHint, bool leafOnly)
    {
        var (_, _, _, t) = Setup(kernelHint);
        ulong region = 0x7_0000_0000; // 1 GiB aligned
        // Map the whole 2 MiB region page by page (4 KiB leaves, one leaf table), as a DMA-API domain would.
        t.Map(region, t.BufferBase, 0x200000, Access.ReadWrite, t.CreateGather());
        ulong start = offset == 0x200000 ? region : region + offset;
        ulong length = offset == 0x200000 ? 0x200000 : bytes;
        var into = (VtdIotlbGather)t.CreateGather();
        t.Unmap(start, length, into, []);
        Assert.Equal(leafOnly, into.Descriptors[0].LeafOnly);
    }
}
