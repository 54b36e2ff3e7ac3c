using System.Text;
using IommuSim.Workloads.Trace;

namespace IommuSim.Workloads.Tests;

/// <summary>The CSV trace reader (docs/trace.md): line endings, number formats, and no allocation per record.</summary>
public class TraceReaderTests
{
    private static List<TraceRecord> Read(byte[] bytes)
    {
        using var r = new TraceReader(new MemoryStream(bytes), "t.csv", new HashSet<string> { "dev0", "nic1" });
        var list = new List<TraceRecord>();
        while (r.Next() is TraceRecord rec) list.Add(rec);
        return list;
    }

    private static List<TraceRecord> Read(string text) => Read(Encoding.UTF8.GetBytes(text));

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\r")]
    public void Line_endings_LF_CRLF_and_CR_count_lines_alike(string nl)
    {
        string text = string.Join(nl, "time_ns,device,pasid,iova,bytes,op", "# c", "", "1.5,dev0,7,0x1000,64,W", "2,nic1,,4096,128,R");
        var recs = Read(text); // and no newline after the last line
        Assert.Equal(2, recs.Count);
        Assert.Equal(4, recs[0].Line);
        Assert.Equal(5, recs[1].Line);
        Assert.Equal(1500L, recs[0].TimePs);
        Assert.Equal(7u, recs[0].Pasid);
        Assert.Equal("nic1", recs[1].Device);
        Assert.Null(recs[1].Pasid);
        Assert.Equal(4096UL, recs[1].Iova);
        Assert.False(recs[1].IsWrite);
    }

    [Fact]
    public void A_utf8_byte_order_mark_and_spaces_around_fields_are_ignored()
    {
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes("time_ns, device, pasid, iova, bytes, op\n 0.125 , dev0 , , 0X2000 , 64 , R \n")).ToArray();
        var r = Assert.Single(Read(bytes));
        Assert.Equal(125L, r.TimePs);
        Assert.Equal(0x2000UL, r.Iova);
    }

    [Theory]
    [InlineData("12", 12_000L)]
    [InlineData("12.", 12_000L)]
    [InlineData(".5", 500L)]
    [InlineData("1.2500", 1_250L)]
    [InlineData("9223372036854775", 9_223_372_036_854_775_000L)]
    public void Times_have_picosecond_resolution(string time, long ps)
        => Assert.Equal(ps, Read($"time_ns,device,pasid,iova,bytes,op\n{time},dev0,,0x0,64,W\n")[0].TimePs);

    [Theory]
    [InlineData("1.2345")]
    [InlineData("9223372036854775.001")]
    [InlineData("9223372036854776")]
    [InlineData("-1")]
    [InlineData("1e3")]
    [InlineData(".")]
    public void Times_beyond_picoseconds_or_range_are_errors(string time)
    {
        var ex = Assert.Throws<TraceFormatException>(() => Read($"time_ns,device,pasid,iova,bytes,op\n{time},dev0,,0x0,64,W\n"));
        Assert.Contains("time_ns", ex.Message);
        Assert.Equal(2, ex.LineNumber);
    }

    [Theory]
    [InlineData(",dev0,,0x10000000000000000,64,W", "iova")]
    [InlineData(",dev0,,18446744073709551616,64,W", "iova")]
    [InlineData(",dev0,,0xffffffffffffffc0,128,W", "overflows")]
    [InlineData(",dev0,1048576,0x0,64,W", "pasid")]
    [InlineData(",dev0,,0x0,1048577,W", "bytes")]
    [InlineData(",dev0,,0x0,64,w", "op")]
    [InlineData(",dev0,,0x0,64,W,extra", "7")]
    public void Malformed_fields_name_the_line(string line, string what)
    {
        var ex = Assert.Throws<TraceFormatException>(() => Read($"time_ns,device,pasid,iova,bytes,op\n,dev0,,0x0,64,W\n{line}\n"));
        Assert.Equal(3, ex.LineNumber);
        Assert.Contains(what, ex.Message);
    }

    [Fact]
    public void Reading_allocates_nothing_per_record()
    {
        var sb = new StringBuilder("time_ns,device,pasid,iova,bytes,op\n");
        for (int i = 0; i < 200_000; i++) sb.Append(i).Append(",dev0,,0x").Append((0x1000 * i).ToString("x")).Append(",64,").Append(i % 2 == 0 ? 'R' : 'W').Append('\n');
        var bytes = Encoding.UTF8.GetBytes(sb.ToString());
        using var r = new TraceReader(new MemoryStream(bytes), "t.csv", new HashSet<string> { "dev0" });
        for (int i = 0; i < 1000; i++) r.Next(); // buffers reach their size
        long before = GC.GetAllocatedBytesForCurrentThread();
        long n = 0;
        while (r.Next() is not null) n++;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(199_000, n);
        // Less than a byte per record: one-off runtime allocations (JIT tiering) may land here, a per-record
        // allocation (≥ 24 bytes each) would be megabytes.
        Assert.True(allocated < n, $"{allocated} bytes allocated for {n} records");
    }
}

/// <summary>The one-pass reader of canonical lines and the general one agree on every record.</summary>
public class TraceReaderFastPathTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Canonical_and_spaced_lines_give_the_same_records(int seed)
    {
        var rng = new Random(seed);
        var canon = new StringBuilder("time_ns,device,pasid,iova,bytes,op\n");
        var spaced = new StringBuilder("time_ns,device,pasid,iova,bytes,op\n");
        long t = 0;
        for (int i = 0; i < 5000; i++)
        {
            string time = rng.Next(4) switch
            {
                0 => "",
                1 => (t += rng.Next(0, 5000)).ToString(),
                2 => $"{(t += 1) }.{rng.Next(0, 1000):000}",
                _ => $"{(t += 1)}.{rng.Next(0, 10)}",
            };
            string dev = rng.Next(2) == 0 ? "dev0" : "nic1";
            string pasid = rng.Next(3) == 0 ? rng.Next(0, 1 << 20).ToString() : "";
            ulong iova = (ulong)rng.NextInt64() >> rng.Next(0, 40);
            string iovaText = rng.Next(4) == 0 ? iova.ToString() : rng.Next(2) == 0 ? $"0x{iova:x}" : $"0X{iova:X}";
            int bytes = rng.Next(1, 1 << 20);
            string op = rng.Next(2) == 0 ? "R" : "W";
            canon.Append($"{time},{dev},{pasid},{iovaText},{bytes},{op}\n");
            spaced.Append($" {time} , {dev},{pasid} ,{iovaText} , {bytes},{op} \n");
        }
        var a = Read(canon.ToString());
        var b = Read(spaced.ToString());
        Assert.Equal(5000, a.Count);
        Assert.Equal(a, b);
    }

    private static List<TraceRecord> Read(string text)
    {
        using var r = new TraceReader(new MemoryStream(Encoding.UTF8.GetBytes(text)), "t.csv", new HashSet<string> { "dev0", "nic1" });
        var list = new List<TraceRecord>();
        while (r.Next() is TraceRecord rec) list.Add(rec);
        return list;
    }
}
