using System.Globalization;
using IommuSim.Hardware.Devices;
using IommuSim.Hardware.Iommu;
using IommuSim.Hardware.Memory;
using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Tests;

/// <summary>
/// The link model against pcie-bench's own model of the calibration host's link (Gen3 x8, MPS 256,
/// MRRS 512, RCB 64, 64-bit addresses): <c>data/pcie-bench/broadwell-e5-2630v4/*/bw_calc.dat</c>,
/// written by <c>pcie-bench/pcie-model</c>'s <c>pcie_bw.py</c>.
/// </summary>
public class PcieModelTests
{
    private static PcieOptions Broadwell() => new() { Generation = 3, Lanes = 8, MaxPayloadBytes = 256, MaxReadRequestBytes = 512, ReadCompletionBoundary = 64, Addressing64 = true };

    /// <summary>(payload, write Gbit/s, read Gbit/s) for every row of bw_calc.dat.</summary>
    internal static IReadOnlyList<(int Size, double Write, double Read)> BwCalc(string folder = "iommu-off")
    {
        string path = Path.Combine(RepoRoot, "data", "pcie-bench", "broadwell-e5-2630v4", folder, "bw_calc.dat");
        var rows = new List<(int, double, double)>();
        foreach (string line in File.ReadLines(path))
        {
            if (line.Length == 0 || line[0] == '"') continue;
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            rows.Add((int.Parse(f[0], CultureInfo.InvariantCulture), double.Parse(f[1], CultureInfo.InvariantCulture), double.Parse(f[3], CultureInfo.InvariantCulture)));
        }
        return rows;
    }

    internal static string RepoRoot
    {
        get
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d is not null && !File.Exists(Path.Combine(d.FullName, "IommuSim.sln"))) d = d.Parent;
            return d?.FullName ?? throw new InvalidOperationException("repository root not found");
        }
    }

    [Fact]
    public void Bw_calc_covers_every_payload_from_1_byte_to_2_KiB()
    {
        var rows = BwCalc();
        Assert.Equal(Enumerable.Range(1, 2048), rows.Select(r => r.Size));
    }

    [Fact]
    public void Closed_form_reproduces_bw_calc_to_its_printed_precision()
    {
        var o = Broadwell();
        foreach (var (size, write, read) in BwCalc())
        {
            Assert.True(Math.Abs(LinkArithmetic.WriteGbps(o, size) - write) <= 0.0051, $"write {size} B: {LinkArithmetic.WriteGbps(o, size)} vs {write}");
            Assert.True(Math.Abs(LinkArithmetic.ReadGbps(o, size) - read) <= 0.0051, $"read {size} B: {LinkArithmetic.ReadGbps(o, size)} vs {read}");
        }
    }

    public static TheoryData<int, int> SizeBlocks()
    {
        var d = new TheoryData<int, int>();
        for (int first = 1; first <= 2048; first += 128) d.Add(first, Math.Min(2048, first + 127));
        return d;
    }

    /// <summary>
    /// The simulated link, IOMMU off, back-to-back reads or writes of one size at cache-line-aligned
    /// addresses (pcie-model assumes aligned requests), as many in flight as the link can take:
    /// within 1 % of bw_calc.dat at every size, both directions.
    /// </summary>
    [Theory]
    [MemberData(nameof(SizeBlocks))]
    public void Simulated_link_matches_bw_calc_within_one_percent(int first, int last)
    {
        foreach (var (size, write, read) in BwCalc().Where(r => r.Size >= first && r.Size <= last))
        {
            double w = StreamGbps(size, isWrite: true), r = StreamGbps(size, isWrite: false);
            Assert.True(Math.Abs(w / write - 1) <= 0.01, $"write {size} B: simulated {w:F3} vs bw_calc {write} Gbit/s");
            Assert.True(Math.Abs(r / read - 1) <= 0.01, $"read {size} B: simulated {r:F3} vs bw_calc {read} Gbit/s");
        }
    }

    [Fact]
    public void Tlp_overhead_is_header_plus_8_bytes_before_Gen6()
    {
        Assert.Equal(256 + 16 + 8, LinkArithmetic.TlpWireBytes(2, 256, true));  // STP + seq + LCRC + END
        Assert.Equal(256 + 16 + 8, LinkArithmetic.TlpWireBytes(3, 256, true));  // 4-B STP token (holds the seq) + LCRC
        Assert.Equal(64 + 12 + 8, LinkArithmetic.TlpWireBytes(4, 64, false));   // 3-DW completion header
        Assert.Equal(256 + 16, LinkArithmetic.TlpWireBytes(6, 256, true));      // FLIT: no per-TLP seq/LCRC
    }

    [Theory]
    [InlineData(3, 8, 256, 8.0 / 203 * 2 + 4.0 / 1538)]
    [InlineData(3, 16, 256, 8.0 / 168 * 2 + 4.0 / 1538)]
    [InlineData(1, 1, 128, 8.0 / 237 * 2 + 4.0 / 1538)]
    [InlineData(2, 8, 512, 8.0 / 137 * 2 + 4.0 / 1538)]
    [InlineData(6, 16, 256, 0.0)]
    public void Dllp_and_skp_share_follows_pcie_model(int gen, int lanes, int mps, double expected)
        => Assert.Equal(expected, LinkOverheads.Fraction(gen, lanes, mps), 12);

    [Fact]
    public void Busy_link_sends_dllps_and_skps_at_their_share_of_its_time()
    {
        var dir = new LinkDirection("t", LinkArithmetic.BytesPerNs(3, 8), LinkOverheads.AckInterval(3, 8, 256), LinkOverheads.Fraction(3, 8, 256));
        long t = 0;
        for (int i = 0; i < 100_000; i++) t = dir.Send(0, 280, 256);
        double overhead = 1 - 100_000 * 280.0 / dir.WireBytes;
        Assert.Equal(LinkOverheads.Fraction(3, 8, 256), overhead, 4);
        Assert.True(dir.Dllps > 0 && dir.SkpOrderedSets > 0);
        Assert.Equal(dir.WireBytes * 1000.0 / LinkArithmetic.BytesPerNs(3, 8), t, 0);
    }

    [Theory]
    [InlineData(0x1000UL, 64, 256, 64, 64)]      // fits in MPS: one completion
    [InlineData(0x1064UL, 100, 256, 64, 100)]    // unaligned but within MPS: still one
    [InlineData(0x1000UL, 512, 256, 64, 256)]    // aligned: MPS-sized completions
    [InlineData(0x1010UL, 512, 256, 64, 240)]    // unaligned: the first ends on an RCB boundary
    [InlineData(0x1010UL, 512, 256, 128, 240)]
    [InlineData(0x1050UL, 300, 128, 128, 48)]
    public void Completions_are_as_large_as_mps_and_rcb_allow(ulong addr, int left, int mps, int rcb, int expected)
        => Assert.Equal(expected, RootComplex.CompletionBytes(addr, left, mps, rcb));

    /// <summary>Payload Gbit/s of a closed-loop stream of <paramref name="size"/>-byte requests, IOMMU off.</summary>
    internal static double StreamGbps(int size, bool isWrite, int requests = 2000)
    {
        var po = Broadwell();
        po.PostedCredits = po.NonPostedCredits = 1024;
        var p = new Platform(new MemoryOptions { BandwidthGBps = 1000 }, po, new IommuOptions(), iommuOnPath: false, seed: 1);
        var dev = p.AddDevice(new DeviceOptions { Name = "dev0", Bdf = "0000:03:00.0", MaxOutstanding = 1024 });
        var client = new Streamer(dev, size, isWrite, requests);
        dev.Client = client;
        client.Fill();
        p.RunUntil(() => client.Completed >= requests);
        return client.Gbps;
    }

    private sealed class Streamer(DmaEngine dev, int size, bool isWrite, int total) : IDmaClient
    {
        private readonly ulong _stride = (ulong)(size + 63) / 64 * 64;
        private ulong _offset;
        private int _issued;
        private long _t0;
        private long _bytes0;
        public int Completed;
        public double Gbps;

        public void Fill()
        {
            while (dev.CanIssue && _issued < total)
            {
                var r = dev.Rent();
                r.Iova = 0x1_0000_0000UL + _offset;
                _offset = (_offset + _stride) % (8UL << 20);
                r.Bytes = size;
                r.IsWrite = isWrite;
                r.Measured = true;
                _issued++;
                dev.Issue(r);
            }
        }

        public void OnDmaComplete(DmaEngine device, DmaRequest request)
        {
            Completed++;
            long now = request.CompletePs;
            device.Return(request);
            // Measure from the quarter mark (steady state) to the end.
            if (Completed == total / 4) { _t0 = now; _bytes0 = (long)Completed * size; }
            else if (Completed == total) Gbps = ((long)Completed * size - _bytes0) * 8.0 / ((now - _t0) / 1000.0);
            Fill();
        }
    }
}
