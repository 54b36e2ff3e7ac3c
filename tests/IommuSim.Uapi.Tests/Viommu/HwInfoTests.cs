using IommuSim.Uapi.Iommufd;

namespace IommuSim.Uapi.Tests.ViommuPath;

/// <summary>IOMMU_GET_HW_INFO behind an SMMUv3: iommufd_get_hw_info with arm_smmu_hw_info (IDR0–5, IIDR, AIDR).</summary>
public class HwInfoTests
{
    /// <summary>DEFAULT or ARM_SMMUV3 gives the 40-byte struct iommu_hw_info_arm_smmuv3 read from the ID registers;
    /// a shorter buffer gets the first bytes, a longer one is zero-filled; INTEL_VTD is EOPNOTSUPP (no impl hw_info).</summary>
    [Theory]
    [InlineData(0u, 0u, 40u)]
    [InlineData(IommuHwInfoFlags.INPUT_TYPE, IommuHwInfoType.ARM_SMMUV3, 40u)]
    [InlineData(0u, 0u, 12u)]
    [InlineData(0u, 0u, 64u)]
    public void Smmu_id_registers(uint flags, uint inType, uint userLen)
    {
        var v = new ViommuSim();
        var c = new IommuHwInfo { dev_id = v.D3.Id, flags = flags, out_data_type = inType, data_len = userLen, data = Enumerable.Repeat((byte)0xAA, (int)userLen).ToArray() };
        Assert.Equal(Errno.OK, v.Ctx.GetHwInfo(c));
        Assert.Equal((IommuHwInfoType.ARM_SMMUV3, IommuHwInfoArmSmmuv3.Size), (c.out_data_type, c.data_len));
        var expect = new IommuHwInfoArmSmmuv3 { iidr = v.Host.ReadIidr(), aidr = v.Host.ReadAidr() };
        for (int i = 0; i < 6; i++) expect.idr[i] = v.Host.ReadIdr(i);
        var bytes = expect.ToBytes();
        int n = (int)Math.Min(userLen, 40);
        Assert.Equal(bytes[..n], c.data![..n]);
        Assert.All(c.data[n..], b => Assert.Equal(0, b));
        Assert.Equal(IommuHwCap.DIRTY_TRACKING, c.out_capabilities & IommuHwCap.DIRTY_TRACKING); // IDR0.HTTU = 2
    }

    [Fact]
    public void Other_types_are_refused()
    {
        var v = new ViommuSim();
        var c = new IommuHwInfo { dev_id = v.D3.Id, flags = IommuHwInfoFlags.INPUT_TYPE, out_data_type = IommuHwInfoType.INTEL_VTD, data_len = 40, data = new byte[40] };
        Assert.Equal(Errno.EOPNOTSUPP, v.Ctx.GetHwInfo(c));
    }
}
