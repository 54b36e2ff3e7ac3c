using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.PageTables;
using IommuSim.Hardware.Smmu;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Tables;
using Xunit;

namespace IommuSim.Hardware.Tests.Smmu;

/// <summary>
/// iommu.architecture puts either IOMMU on the PCIe path: the root complex hands TLPs to whichever
/// <see cref="Pcie.ITranslationAgent"/> the platform built, and a DMA's outcome is what the SMMU's
/// STE says (StreamID = requester ID, as arm_smmu_of_xlate/iort number PCI functions).
/// </summary>
public sealed class SmmuPlatformTests
{
    private static TestPlatform Smmu() => new(tweak: o => o.Architecture = "smmuv3");

    [Theory]
    [InlineData("vtd", false)]
    [InlineData("smmuv3", true)]
    public void Architecture_selects_the_translation_agent_on_the_path(string arch, bool smmu)
    {
        var tp = new TestPlatform(tweak: o => o.Architecture = arch);
        Assert.Equal(arch, tp.Platform.Architecture);
        Assert.Equal(smmu, tp.Platform.Smmu is not null);
        if (smmu) Assert.Same(tp.Platform.SmmuAdapter, tp.Platform.TranslationAgent);
        else Assert.Same(tp.Platform.Iommu, tp.Platform.TranslationAgent);
    }

    public enum SteKind { None, Bypass, Abort, Stage2 }

    [Theory]
    [InlineData(SteKind.None, true, FaultReason.ContextNotPresent, 0UL)]        // no stream table: C_BAD_STREAMID
    [InlineData(SteKind.Bypass, false, FaultReason.ContextNotPresent, 0x4000_0123UL)]         // STE.Config = bypass: address unchanged
    [InlineData(SteKind.Abort, true, FaultReason.ContextNotPresent, 0UL)]        // STE.Config = abort
    [InlineData(SteKind.Stage2, false, FaultReason.ContextNotPresent, 0x9_0000_0123UL)]       // stage-2 table maps the page
    public void A_dma_through_the_root_complex_follows_the_ste(SteKind kind, bool faulted, FaultReason reason, ulong pa)
    {
        var tp = Smmu();
        var smmu = tp.Platform.Smmu!;
        if (kind != SteKind.None)
        {
            smmu.StreamTable = new StreamTable(smmu.Memory, 16);
            var ste = kind switch
            {
                SteKind.Bypass => new StreamTableEntry { Valid = true, Config = SteConfig.Bypass },
                SteKind.Abort => new StreamTableEntry { Valid = true, Config = SteConfig.Abort },
                _ => Stage2Ste(smmu),
            };
            smmu.StreamTable.Install(tp.Rid.Value, ste);
        }
        var r = tp.Platform.ExecuteDma(tp.Rid, null, 0x4000_0123, 64, Access.Read);
        Assert.Equal(faulted, r.Faulted);
        if (faulted) Assert.Equal(reason, r.Reason);
        else Assert.Equal(pa, r.PhysicalAddress);
        Assert.Equal(1, smmu.Translations);
        Assert.Equal(0, tp.Platform.Iommu.Translations); // the VT-d unit is off the path
    }

    private static StreamTableEntry Stage2Ste(SmmuUnit smmu)
    {
        var t = new VmsaPageTable(smmu.Memory, SmmuStage.Stage2, Granule.Size4K, 48);
        t.Map(0x4000_0000, 0x9_0000_0000, 0x1000, Access.ReadWrite);
        return new StreamTableEntry
        {
            Valid = true, Config = SteConfig.Stage2, S2Vmid = 1, S2T0Sz = 16, S2Sl0 = StreamTableEntry.EncodeSl0(Granule.Size4K, t.StartLevel),
            S2Granule = Granule.Size4K, S2Aa64 = true, S2Ttb = t.Root,
        };
    }
}
