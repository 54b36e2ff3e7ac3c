using IommuSim.Hardware.Iommu.Invalidation;
using IommuSim.Uapi.Driver;
using IommuSim.Uapi.Hardware;

namespace IommuSim.Uapi.Tests.DmaApi;

/// <summary>
/// The one invalidation builder (<see cref="VtdInvalidation"/>) makes the choices of drivers/iommu/intel/cache.c:
/// cache_tag_flush_range (second stage: PSI, DSI when the mask exceeds cap_max_amask_val; first stage: PASID-based
/// PSI with no such fallback; device TLB: qi_flush_dev_iotlb for IOMMU_NO_PASID, qi_flush_dev_iotlb_pasid otherwise)
/// and cache_tag_flush_all (DSI or all of the PASID; the whole device TLB with qi_flush_dev_iotlb).
/// </summary>
public class VtdInvalidationTests
{
    private static readonly PlatformSpec AtsSpec = new()
    {
        Devices = [DeviceSpec.Parse("0000:03:00.0", 3, ats: true), DeviceSpec.Parse("0000:04:00.0", 4, ats: true)],
    };

    /// <summary>A second-stage domain attached to device 3 at <paramref name="pasid"/>.</summary>
    private static (Sim S, VtdPagingDomain D) Attached(uint pasid)
    {
        var s = new Sim(AtsSpec);
        var d = s.Kernel.Vtd!.AllocPagingDomain(nestParent: false, dirtyTracking: false);
        Assert.Equal(Errno.OK, s.Kernel.Vtd!.SetDevicePasid(s.Device(Sim.Dev3), pasid, d, null));
        return (s, d);
    }

    [Theory]
    // iova, bytes → address mask; 1 GiB (mask 18) is still page-selective, 2 GiB (mask 19) is domain-selective.
    [InlineData(0x1000UL, 0x1000UL, 0, false)]
    [InlineData(0x3000UL, 0x2000UL, 3, false)]            // pages 3-4 straddle an 8-page boundary: mask 3, as calculate_psi_aligned_address
    [InlineData(0x4000_0000UL, 0x4000_0000UL, 18, false)]
    [InlineData(0x8000_0000UL, 0x8000_0000UL, 19, true)]
    public void SecondStageRange_IsPageSelective_UpToTheMaximumMask_ThenDomainSelective(ulong iova, ulong bytes, int mask, bool dsi)
    {
        var (_, d) = Attached(0);
        var list = new List<InvalidationDescriptor>();
        VtdInvalidation.AddRange(list, d, firstStage: false, iova, bytes, leafOnly: true);
        var iotlb = list[0];
        Assert.Equal(InvalidationType.Iotlb, iotlb.Type);
        Assert.Equal(dsi ? InvalidationGranularity.Domain : InvalidationGranularity.Page, iotlb.Granularity);
        if (!dsi)
        {
            Assert.Equal(mask, iotlb.AddressMask);
            Assert.True(iotlb.LeafOnly);
        }
        // The device TLB keeps the range whatever the IOTLB fallback (cache_tag_flush_devtlb_psi).
        Assert.Equal(InvalidationType.DeviceTlb, list[1].Type);
        Assert.Equal(mask, list[1].AddressMask);
        Assert.Equal(2, list.Count);
    }

    [Theory]
    [InlineData(0u, InvalidationType.DeviceTlb)]        // IOMMU_NO_PASID: qi_flush_dev_iotlb
    [InlineData(5u, InvalidationType.PasidDeviceTlb)]   // any other PASID: qi_flush_dev_iotlb_pasid
    public void DeviceTlbRange_UsesThePasidForm_OnlyForARealPasid(uint pasid, InvalidationType expected)
    {
        var (_, d) = Attached(pasid);
        var list = new List<InvalidationDescriptor>();
        VtdInvalidation.AddRange(list, d, firstStage: false, 0x10_0000, 0x1000, leafOnly: false);
        var dev = Assert.Single(list, x => x.Type is InvalidationType.DeviceTlb or InvalidationType.PasidDeviceTlb);
        Assert.Equal(expected, dev.Type);
        if (pasid != 0) Assert.Equal(pasid, dev.Pasid);
    }

    [Fact]
    public void FirstStageRange_IsPasidSelective_WithoutTheDomainFallback_AndFlushAllTakesTheWholeDeviceTlb()
    {
        var s = new Sim(AtsSpec);
        var parent = s.Kernel.Vtd!.AllocPagingDomain(nestParent: true, dirtyTracking: false);
        var nested = s.Kernel.Vtd!.AllocNestedDomain(parent, VtdS1Flags.None, 0x10_0000, 48);
        Assert.Equal(Errno.OK, s.Kernel.Vtd!.SetDevicePasid(s.Device(Sim.Dev3), 0, nested, null));

        var list = new List<InvalidationDescriptor>();
        VtdInvalidation.AddRange(list, nested, firstStage: true, 0x8000_0000, 0x8000_0000, leafOnly: false);
        Assert.Equal(InvalidationType.PasidIotlb, list[0].Type);
        Assert.Equal(InvalidationGranularity.Page, list[0].Granularity);
        Assert.Equal(19, list[0].AddressMask);
        Assert.Equal(InvalidationType.DeviceTlb, list[1].Type); // PASID 0 is IOMMU_NO_PASID

        list.Clear();
        VtdInvalidation.AddAll(list, nested, firstStage: true);
        Assert.Equal([InvalidationType.PasidIotlb, InvalidationType.DeviceTlb], list.Select(x => x.Type));
        Assert.Equal(InvalidationGranularity.Device, list[0].Granularity);  // all of the PASID
        Assert.Equal(InvalidationGranularity.Global, list[1].Granularity);  // the whole device TLB
    }

    [Fact]
    public void HwptInvalidate_OfAWholeAddressSpaceRange_IsAllOfThePasid()
    {
        // npages = 2^52 from 0: calculate_psi_aligned_address gives the widest mask; the model's descriptor range
        // arithmetic stops at 2^64, so the builder says "all of the PASID", which covers the same entries.
        var s = new Sim(AtsSpec);
        var parent = s.Kernel.Vtd!.AllocPagingDomain(nestParent: true, dirtyTracking: false);
        var nested = s.Kernel.Vtd!.AllocNestedDomain(parent, VtdS1Flags.None, 0x10_0000, 48);
        Assert.Equal(Errno.OK, s.Kernel.Vtd!.SetDevicePasid(s.Device(Sim.Dev3), 0, nested, null));
        var list = new List<InvalidationDescriptor>();
        var freed = new List<ulong>();
        using (s.Kernel.Vtd!.DeferFlushes(list, freed)) s.Kernel.Vtd!.FlushNestedUser(nested, 0, 1UL << 52, leafOnly: false);
        Assert.Equal(InvalidationType.PasidIotlb, list[0].Type);
        Assert.Equal(InvalidationGranularity.Device, list[0].Granularity);
        Assert.Equal(InvalidationGranularity.Global, list[1].Granularity);
    }
}
