namespace IommuSim.Hardware.Pcie;

/// <summary>
/// Link-layer traffic that shares a direction with the TLPs: ACK DLLPs at the spec's Ack latency
/// limit, UpdateFC DLLPs at its recommended update interval, and SKP ordered sets for clock
/// compensation. The intervals are PCIe Base Spec r5.0 Tables 3-7/3-8/3-9 (Ack latency limits)
/// and 2-46/2-47/2-48 (UpdateFC), in symbol times, as tabulated by pcie-bench's model
/// (`pcie-bench/pcie-model`, <c>model/pcie.py</c>: <c>Ack_Limits</c>, <c>FC_Guide</c>, which are
/// equal for the widths modelled here); Gen4–5 use the Gen3 values, as there.
/// </summary>
public static class LinkOverheads
{
    /// <summary>SKP ordered set: 4 B every 1538 (pcie-model <c>SKIP_Length</c>, <c>SKIP_Interval</c>).</summary>
    public const int SkpBytes = 4;
    public const int SkpInterval = 1538;

    // Rows: lanes x1, x2, x4, x8, x16; columns: MPS 128, 256, 512, 1024, 2048, 4096.
    private static readonly int[,] Gen1 =
    {
        { 237, 416, 559, 1071, 2095, 4143 }, { 128, 217, 289, 545, 1057, 2081 }, { 73, 118, 154, 282, 538, 1050 },
        { 67, 107, 86, 150, 278, 534 }, { 48, 72, 86, 150, 278, 534 },
    };
    private static readonly int[,] Gen2 =
    {
        { 288, 467, 610, 1122, 2146, 4194 }, { 179, 268, 340, 596, 1108, 2132 }, { 124, 169, 205, 333, 589, 1101 },
        { 118, 158, 137, 201, 329, 585 }, { 99, 123, 137, 201, 329, 585 },
    };
    private static readonly int[,] Gen3 =
    {
        { 333, 512, 655, 1167, 2191, 4239 }, { 224, 313, 385, 641, 1153, 2177 }, { 169, 214, 250, 378, 634, 1146 },
        { 163, 203, 182, 246, 374, 630 }, { 144, 168, 182, 246, 374, 630 },
    };

    /// <summary>Ack latency limit (= UpdateFC interval here) for a link, or 0 in FLIT mode (Gen6: DLLPs ride in the flits).</summary>
    public static int AckInterval(int generation, int lanes, int mps)
    {
        if (generation == 6) return 0;
        var t = generation switch { 1 => Gen1, 2 => Gen2, _ => Gen3 };
        int row = lanes switch { 1 => 0, 2 => 1, 4 => 2, 8 => 3, 16 => 4, _ => throw new ArgumentOutOfRangeException(nameof(lanes)) };
        int col = System.Numerics.BitOperations.Log2((uint)mps) - 7;
        if (col is < 0 or > 5 || 128 << col != mps) throw new ArgumentOutOfRangeException(nameof(mps));
        return t[row, col];
    }

    public static int FcUpdateInterval(int generation, int lanes, int mps) => AckInterval(generation, lanes, mps);

    /// <summary>Share of a direction's raw rate taken by ACKs, UpdateFCs and SKPs (0 in FLIT mode).</summary>
    public static double Fraction(int generation, int lanes, int mps)
    {
        int ack = AckInterval(generation, lanes, mps);
        if (ack == 0) return 0;
        return (double)LinkArithmetic.DllpBytes / ack + (double)LinkArithmetic.DllpBytes / FcUpdateInterval(generation, lanes, mps)
            + (double)SkpBytes / SkpInterval;
    }
}
