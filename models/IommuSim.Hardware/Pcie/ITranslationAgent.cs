using IommuSim.Hardware.Iommu;

namespace IommuSim.Hardware.Pcie;

/// <summary>
/// The IOMMU as the root complex sees it, whatever the architecture (VT-d's remapping unit, an
/// SMMUv3): it takes upstream TLPs for translation, hands them back through its sink, and records
/// PRI page requests for software.
/// </summary>
public interface ITranslationAgent
{
    /// <summary>Where translated TLPs go (the root complex).</summary>
    ITranslationSink? Sink { get; set; }

    /// <summary>Takes a TLP for translation, or refuses it when full: the sink then gets
    /// <see cref="ITranslationSink.OnInputQueueSpace"/>.</summary>
    bool TryAccept(Tlp tlp);

    /// <summary>A PRI page-request message arrived.</summary>
    void RecordPageRequest(Tlp tlp);
}
