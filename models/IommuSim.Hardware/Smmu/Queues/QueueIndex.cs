namespace IommuSim.Hardware.Smmu.Queues;

/// <summary>
/// The PROD/CONS index arithmetic of SMMUv3's circular queues (§3.5.1): an index is
/// log2size bits of position plus one wrap bit, so "full" (same position, different wrap) and
/// "empty" (equal) are distinguishable without a spare slot.
/// </summary>
public readonly struct QueueIndex(int log2Size)
{
    public int Log2Size { get; } = log2Size;
    public uint Entries => 1u << Log2Size;
    private uint Mask => (2u << Log2Size) - 1;

    public uint Position(uint index) => index & (Entries - 1);

    public uint Next(uint index) => (index + 1) & Mask;

    public bool Empty(uint prod, uint cons) => prod == cons;

    public bool Full(uint prod, uint cons) => Position(prod) == Position(cons) && prod != cons;

    /// <summary>Entries between CONS and PROD.</summary>
    public uint Count(uint prod, uint cons) => (prod - cons) & Mask;
}
