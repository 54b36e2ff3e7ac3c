namespace IommuSim.Hardware.Pcie;

/// <summary>PCIe link and root-complex parameters (config section <c>pcie</c>).</summary>
public sealed class PcieOptions
{
    /// <summary>1–6: 2.5, 5, 8, 16, 32, 64 GT/s per lane.</summary>
    public int Generation { get; set; } = 4;
    /// <summary>1, 2, 4, 8 or 16.</summary>
    public int Lanes { get; set; } = 16;
    /// <summary>MPS: largest TLP payload (128–4096, power of two).</summary>
    public int MaxPayloadBytes { get; set; } = 256;
    /// <summary>MRRS: largest read request (128–4096, power of two).</summary>
    public int MaxReadRequestBytes { get; set; } = 512;
    /// <summary>RCB: read completions are split at multiples of this (64 or 128).</summary>
    public int ReadCompletionBoundary { get; set; } = 64;
    /// <summary>Root-complex traversal latency, each way (ns).</summary>
    public double RootComplexLatencyNs { get; set; } = 150;
    /// <summary>Memory requests use 64-bit addresses (4-DW header) rather than 32-bit (3-DW).</summary>
    public bool Addressing64 { get; set; } = true;
    /// <summary>
    /// PCIe ordering: a posted write may not pass an earlier posted write of the same device, so a
    /// write whose translation misses holds back the writes behind it (head-of-line blocking at the
    /// root port). Reads (non-posted) complete out of order. Off: writes commit as soon as translated.
    /// </summary>
    public bool OrderedPostedWrites { get; set; } = true;
    /// <summary>Root-port receive buffer in TLP headers for posted requests (writes).</summary>
    public int PostedCredits { get; set; } = 64;
    /// <summary>Root-port receive buffer in TLP headers for non-posted requests (reads).</summary>
    public int NonPostedCredits { get; set; } = 64;

    /// <summary>Raw rate per lane of a generation (GT/s).</summary>
    public static double GigaTransfersPerLane(int generation) => generation switch
    {
        1 => 2.5, 2 => 5, 3 => 8, 4 => 16, 5 => 32, 6 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(generation), generation, "PCIe generations are 1..6"),
    };

    public void Validate(string path, List<string> errors)
    {
        if (Generation is < 1 or > 6) errors.Add($"{path}:generation = {Generation}: must be 1..6");
        if (Lanes is not (1 or 2 or 4 or 8 or 16)) errors.Add($"{path}:lanes = {Lanes}: allowed values are 1, 2, 4, 8, 16");
        if (!IsPow2(MaxPayloadBytes) || MaxPayloadBytes is < 128 or > 4096) errors.Add($"{path}:maxPayloadBytes = {MaxPayloadBytes}: allowed values are 128, 256, 512, 1024, 2048, 4096");
        if (!IsPow2(MaxReadRequestBytes) || MaxReadRequestBytes is < 128 or > 4096) errors.Add($"{path}:maxReadRequestBytes = {MaxReadRequestBytes}: allowed values are 128, 256, 512, 1024, 2048, 4096");
        if (ReadCompletionBoundary is not (64 or 128)) errors.Add($"{path}:readCompletionBoundary = {ReadCompletionBoundary}: allowed values are 64, 128");
        if (!(RootComplexLatencyNs >= 0 && RootComplexLatencyNs <= 1e6)) errors.Add($"{path}:rootComplexLatencyNs = {RootComplexLatencyNs}: must be in [0, 1e6]");
        if (PostedCredits is < 1 or > 4096) errors.Add($"{path}:postedCredits = {PostedCredits}: must be in [1, 4096]");
        if (NonPostedCredits is < 1 or > 4096) errors.Add($"{path}:nonPostedCredits = {NonPostedCredits}: must be in [1, 4096]");
    }

    private static bool IsPow2(int v) => v > 0 && (v & (v - 1)) == 0;
}
