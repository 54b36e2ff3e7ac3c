using IommuSim.Simulation.Config;

namespace IommuSim.Simulation.Tests;

/// <summary>
/// The design checks (now on the design objects, IommuSim.Uapi.Designs) give the same messages,
/// in the same order, as the design-name checks ConfigValidator had before (recorded with it).
/// </summary>
public class DesignValidationTests
{
    private static string Config(TempDir t, string design, string vms, string attach)
    {
        string path = t.Sub("d.json");
        File.WriteAllText(path, $$"""
        { "name": "d", "simulation": { "seed": 1, "warmupRequests": 0, "maxRequests": 2000 },
          "translation": { "design": "{{design}}" },
          "vms": [ {{vms}} ],
          "devices": [ { "name": "dev0", "bdf": "0000:03:00.0", "attach": { {{attach}} }, "dmaRegions": [ { "iova": "0x100000000", "bytes": "16MiB" } ] },
                       { "name": "dev1", "bdf": "0000:04:00.0", "attach": { "via": "iommufd" }, "dmaRegions": [ { "iova": "0x100000000", "bytes": "16MiB" } ] } ],
          "workloads": [ { "device": "dev0", "type": "random", "bytes": 64, "workingSetBytes": "512KiB" } ] }
        """);
        return path;
    }

    private const string TwoVms = """{ "name": "a", "memoryMiB": 512 }, { "name": "b", "memoryMiB": 512 }""";
    private const string OneVm = """{ "name": "a", "memoryMiB": 512 }""";

    [Theory]
    [InlineData("nested", "", "\"via\": \"iommufd\"",
        "config error: T/d.json: devices:0:attach:vm: design 'nested' assigns devices to a VM; name one (vms: none defined)\nconfig error: T/d.json: devices:1:attach:vm: design 'nested' assigns devices to a VM; name one (vms: none defined)\nconfig error: T/d.json: translation:design = nested: needs a VM in 'vms'")]
    [InlineData("shadow", "", "\"via\": \"kernel\", \"demandPaging\": true",
        "config error: T/d.json: devices:0:attach:demandPaging = true: needs ats:enabled = true and ats:pri = true (page requests)\nconfig error: T/d.json: devices:0:attach:vm: design 'shadow' assigns devices to a VM; name one (vms: none defined)\nconfig error: T/d.json: devices:0:attach:via = kernel: design 'shadow' assigns the device to a VM through VFIO; use iommufd or vfio-container\nconfig error: T/d.json: devices:1:attach:vm: design 'shadow' assigns devices to a VM; name one (vms: none defined)\nconfig error: T/d.json: translation:design = shadow: needs a VM in 'vms'")]
    [InlineData("nested", TwoVms, "\"via\": \"kernel\"",
        "config error: T/d.json: devices:0:attach:vm: design 'nested' assigns devices to a VM; name one (vms: a, b)\nconfig error: T/d.json: devices:0:attach:via = kernel: design 'nested' assigns the device to a VM through VFIO; use iommufd or vfio-container\nconfig error: T/d.json: devices:1:attach:vm: design 'nested' assigns devices to a VM; name one (vms: a, b)")]
    [InlineData("shadow", TwoVms, "\"via\": \"iommufd\", \"vm\": \"b\"",
        "config error: T/d.json: devices:1:attach:vm: design 'shadow' assigns devices to a VM; name one (vms: a, b)")]
    [InlineData("nested", OneVm, "\"via\": \"kernel\", \"demandPaging\": true",
        "config error: T/d.json: devices:0:attach:demandPaging = true: needs ats:enabled = true and ats:pri = true (page requests)\nconfig error: T/d.json: devices:0:attach:via = kernel: design 'nested' assigns the device to a VM through VFIO; use iommufd or vfio-container")]
    [InlineData("off", "", "\"via\": \"kernel\", \"demandPaging\": true",
        "config error: T/d.json: devices:0:attach:demandPaging = true: needs ats:enabled = true and ats:pri = true (page requests)\nconfig error: T/d.json: devices:0:attach:demandPaging = true: demand paging needs IOMMU translation (design single-stage, nested or shadow; design = off)")]
    [InlineData("passthrough", OneVm, "\"via\": \"iommufd\", \"demandPaging\": true",
        "config error: T/d.json: devices:0:attach:demandPaging = true: needs ats:enabled = true and ats:pri = true (page requests)\nconfig error: T/d.json: devices:0:attach:demandPaging = true: demand paging needs IOMMU translation (design single-stage, nested or shadow; design = passthrough)")]
    [InlineData("single-stage", "", "\"via\": \"kernel\", \"demandPaging\": true",
        "config error: T/d.json: devices:0:attach:demandPaging = true: needs ats:enabled = true and ats:pri = true (page requests)")]
    [InlineData("single-stage", TwoVms, "\"via\": \"vfio-container\"",
        "")]
    public void Design_checks_keep_their_messages(string design, string vms, string attach, string expected)
    {
        using var t = new TempDir();
        string path = Config(t, design, vms, attach);
        string got;
        try
        {
            Simulator.LoadConfig(path);
            got = "";
        }
        catch (ConfigError e)
        {
            got = string.Join("\n", e.Messages).Replace(t.Path, "T", StringComparison.Ordinal);
        }
        Assert.Equal(expected, got);
    }
}
