using IommuSim.Uapi.Iommufd;
using IommuSim.Uapi.Script;
using IommuSim.Uapi.Vfio;

namespace IommuSim.Uapi.Tests.Boundary;

/// <summary>The script layer binds names only: every row of iommufd_ioctl_ops is a call with the dispatch keys, and
/// flag names are the uAPI's constants (include/uapi/linux/iommufd.h, vfio.h).</summary>
public class ScriptBindingTests
{
    [Fact]
    public void Every_iommufd_ioctl_is_a_script_call_with_size_and_trailing_keys()
    {
        foreach (var op in IommufdIoctlTable.Ops)
        {
            Assert.True(ScriptCalls.Table.TryGetValue(op.Name, out var spec), op.Name);
            Assert.Equal(new NumberKind(32), spec!.Keys["size"]); // struct's __u32 size
            Assert.True(spec.Keys.ContainsKey("trailing"), op.Name);
        }
    }

    public static TheoryData<string, string, Type, string> FlagTables() => new()
    {
        { "IOAS_MAP", "flags", typeof(IommuIoasMapFlags), "" },
        { "HWPT_ALLOC", "flags", typeof(IommuHwptAllocFlags), "" },
        { "HWPT_ALLOC", "data_type", typeof(IommuHwptDataType), "" },
        { "OPTION", "option_id", typeof(IommuOptionId), "" },
        { "VFIO_IOAS", "op", typeof(IommuVfioIoasOp), "" },
        { "HWPT_GET_DIRTY_BITMAP", "flags", typeof(IommuHwptGetDirtyBitmapFlags), "" },
        { "FAULT_RESPOND", "code", typeof(IommuHwptPageResponse), "CODE_" },
        { "IOMMU_MAP_DMA", "flags", typeof(VfioConst), "VFIO_DMA_MAP_FLAG_" },
        { "IOMMU_UNMAP_DMA", "flags", typeof(VfioConst), "VFIO_DMA_UNMAP_FLAG_" },
    };

    [Theory]
    [MemberData(nameof(FlagTables))]
    public void Flag_names_and_values_are_the_uapi_constants(string call, string key, Type uapi, string prefix)
    {
        var kind = Assert.IsType<FlagsKind>(ScriptCalls.Table[call].Keys[key]);
        var consts = uapi.GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Where(f => f.IsLiteral && f.Name.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(f => f.Name[prefix.Length..], f => Convert.ToUInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(consts.OrderBy(c => c.Key, StringComparer.Ordinal), kind.Names.OrderBy(c => c.Key, StringComparer.Ordinal));
    }
}
