namespace IommuSim.Hardware.Pcie;

/// <summary>
/// Closed-form PCIe link arithmetic shared by the link model and its validation, counted as
/// pcie-bench's model counts it (`pcie-bench/pcie-model`, <c>model/pcie.py</c>, <c>model/mem_bw.py</c>):
/// <list type="bullet">
/// <item>Per TLP on the wire: header (12 B for 3-DW, 16 B for 4-DW) + 8 B at every generation
/// before Gen6. Gen1–2: STP (1) + sequence number (2) + LCRC (4) + END (1). Gen3–5: the 4-B STP
/// token, which carries the 12-bit sequence number (PCIe Base Spec §4.2.2.3.1), + LCRC (4).</item>
/// <item>Per direction, ACK and UpdateFC DLLPs (8 B each: 6 B + 2 B framing) once per the spec's
/// Ack latency limit / UpdateFC interval (see <see cref="LinkOverheads"/>), and a 4-B SKP ordered
/// set every 1538 (pcie-model's figures; like pcie-model, the interval is compared with bytes, not
/// symbol times × lanes).</item>
/// <item>Gen6 FLIT mode, approximated: 256-B flits carrying 236 B of TLP bytes (the rest is DLLP
/// payload, CRC and FEC, so no separate DLLPs or SKPs), no per-TLP sequence/LCRC, 16-B headers.</item>
/// </list>
/// </summary>
public static class LinkArithmetic
{
    /// <summary>A DLLP on the wire: 4 B + 2 B CRC + 2 B framing (pcie-model <c>FC_Size</c>, <c>Ack_Size</c>).</summary>
    public const int DllpBytes = 8;

    /// <summary>Completion (with data) header: 3 DW.</summary>
    public const int CompletionHeaderBytes = 12;

    /// <summary>Encoding efficiency (8b/10b for Gen1–2, 128b/130b for Gen3–5, flit efficiency for Gen6).</summary>
    public static double Encoding(int generation) => generation switch
    {
        1 or 2 => 8.0 / 10.0,
        3 or 4 or 5 => 128.0 / 130.0,
        6 => 236.0 / 256.0,
        _ => throw new ArgumentOutOfRangeException(nameof(generation)),
    };

    /// <summary>Raw bytes per ns in one direction after line encoding (GT/s × lanes × encoding / 8).</summary>
    public static double BytesPerNs(int generation, int lanes)
        => PcieOptions.GigaTransfersPerLane(generation) * lanes * Encoding(generation) / 8.0;

    /// <summary>Bytes per ns left for TLPs once DLLPs and SKP ordered sets are paid (pcie-model's <c>TLP_bw</c>).</summary>
    public static double TlpBytesPerNs(int generation, int lanes, int mps)
        => BytesPerNs(generation, lanes) * (1 - LinkOverheads.Fraction(generation, lanes, mps));

    public static int HeaderBytes(bool fourDw) => fourDw ? 16 : 12;

    /// <summary>Per-TLP bytes besides header and payload: 8 B before Gen6 (see the class summary), 0 in FLIT mode.</summary>
    public static int FramingBytes(int generation) => generation == 6 ? 0 : 8;

    /// <summary>Bytes a TLP occupies on the wire.</summary>
    public static int TlpWireBytes(int generation, int payload, bool fourDwHeader)
        => payload + HeaderBytes(fourDwHeader || generation == 6) + FramingBytes(generation);

    /// <summary>
    /// Effective write bandwidth (Gbit/s of payload) of back-to-back writes of <paramref name="size"/>
    /// bytes, each split into ⌈size/MPS⌉ posted TLPs (pcie-model <c>mem_bw.write</c>).
    /// </summary>
    public static double WriteGbps(PcieOptions o, int size)
    {
        int tlps = (size + o.MaxPayloadBytes - 1) / o.MaxPayloadBytes;
        double wire = size + (double)tlps * (HeaderBytes(o.Addressing64 || o.Generation == 6) + FramingBytes(o.Generation));
        return TlpBytesPerNs(o.Generation, o.Lanes, o.MaxPayloadBytes) * 8 * size / wire;
    }

    /// <summary>
    /// Effective read bandwidth (Gbit/s of data) of back-to-back reads of <paramref name="size"/> bytes:
    /// ⌈size/MRRS⌉ read requests one way, ⌈size/MPS⌉ completions the other (aligned requests,
    /// completions as large as MPS allows); whichever direction saturates first sets the rate
    /// (pcie-model <c>mem_bw.read</c>).
    /// </summary>
    public static double ReadGbps(PcieOptions o, int size)
    {
        int g = o.Generation;
        int requests = (size + o.MaxReadRequestBytes - 1) / o.MaxReadRequestBytes;
        int completions = (size + o.MaxPayloadBytes - 1) / o.MaxPayloadBytes;
        double up = requests * (double)(HeaderBytes(o.Addressing64 || g == 6) + FramingBytes(g));
        double down = size + completions * (double)(HeaderBytes(g == 6) + FramingBytes(g));
        double rate = TlpBytesPerNs(g, o.Lanes, o.MaxPayloadBytes);
        double readsPerNs = Math.Min(rate / up, rate / down);
        return readsPerNs * size * 8;
    }

    /// <summary>Closed-form throughput (Gbit/s) of a stream of posted writes of one full MPS each.</summary>
    public static double PostedWriteGbps(int generation, int lanes, int payload, bool addressing64)
        => WriteGbps(new PcieOptions { Generation = generation, Lanes = lanes, MaxPayloadBytes = payload, Addressing64 = addressing64 }, payload);
}
