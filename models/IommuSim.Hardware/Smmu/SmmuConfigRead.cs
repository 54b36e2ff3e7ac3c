namespace IommuSim.Hardware.Smmu;

/// <summary>The dependent reads of a configuration fetch (SMMUv3 §3.3, §5), in the order they can occur.</summary>
public enum SmmuConfigRead : byte
{
    /// <summary>Level-1 stream-table descriptor (two-level stream table).</summary>
    L1Std,
    /// <summary>The stream table entry.</summary>
    Ste,
    /// <summary>A stage-2 descriptor translating a CD-table IPA (nested).</summary>
    Stage2,
    /// <summary>Level-1 context-descriptor table descriptor (two-level CD table).</summary>
    L1Cd,
    /// <summary>The context descriptor.</summary>
    Cd,
}
