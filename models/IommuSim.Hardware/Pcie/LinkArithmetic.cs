namespace IommuSim.Hardware.Pcie;

/// <summary>
/// Closed-form PCIe link arithmetic shared by the link model and its validation.
/// Per TLP on the wire: header (12 B for 3-DW, 16 B for 4-DW) + sequence number (2 B) + LCRC
/// (4 B) + framing (STP/END 2 B with 8b/10b; 4-B STP token with 128b/130b). A DLLP is 6 B + 2 B
/// framing. Gen6 uses FLIT mode, modelled approximately: 256-B flits carrying 236 B of TLP bytes
/// (the rest is DLLP payload, CRC and FEC), no per-TLP sequence/LCRC, 16-B headers.
/// </summary>
public static class LinkArithmetic
{
    public const int DllpBytes = 8;

    /// <summary>Encoding efficiency (8b/10b for Gen1–2, 128b/130b for Gen3–5, flit efficiency for Gen6).</summary>
    public static double Encoding(int generation) => generation switch
    {
        1 or 2 => 8.0 / 10.0,
        3 or 4 or 5 => 128.0 / 130.0,
        6 => 236.0 / 256.0,
        _ => throw new ArgumentOutOfRangeException(nameof(generation)),
    };

    /// <summary>Usable bytes per ns in one direction (GT/s × lanes × encoding / 8).</summary>
    public static double BytesPerNs(int generation, int lanes)
        => PcieOptions.GigaTransfersPerLane(generation) * lanes * Encoding(generation) / 8.0;

    public static int HeaderBytes(bool fourDw) => fourDw ? 16 : 12;

    /// <summary>Per-TLP bytes besides header and payload.</summary>
    public static int FramingBytes(int generation) => generation switch
    {
        1 or 2 => 2 + 6,
        6 => 0,
        _ => 4 + 6,
    };

    /// <summary>Bytes a TLP occupies on the wire.</summary>
    public static int TlpWireBytes(int generation, int payload, bool fourDwHeader)
        => payload + HeaderBytes(fourDwHeader || generation == 6) + FramingBytes(generation);

    /// <summary>
    /// Closed-form payload throughput (Gbit/s) of a stream of posted writes of <paramref name="payload"/>
    /// bytes: raw × encoding × payload / (payload + per-TLP overhead). DLLPs (ACK, UpdateFC) for
    /// upstream writes travel downstream, so they do not reduce upstream throughput.
    /// </summary>
    public static double PostedWriteGbps(int generation, int lanes, int payload, bool addressing64)
        => BytesPerNs(generation, lanes) * 8.0 * payload / TlpWireBytes(generation, payload, addressing64);
}
