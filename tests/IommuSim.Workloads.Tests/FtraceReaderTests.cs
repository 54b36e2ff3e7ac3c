using System.Text;
using IommuSim.Workloads.KernelTrace;
using IommuSim.Workloads.Trace;

namespace IommuSim.Workloads.Tests;

/// <summary>
/// The ftrace text formats: TP_printk of include/trace/events/iommu.h (map, unmap, io_page_fault)
/// and drivers/iommu/intel/trace.h (qi_submit, one line per descriptor qi_submit_sync queues),
/// as the tracefs 'trace' file and 'trace-cmd report' print them.
/// </summary>
public class FtraceReaderTests
{
    private static FtraceReader Reader(string text) => new(new MemoryStream(Encoding.UTF8.GetBytes(text)), "k.trace");

    private static List<FtraceEvent> All(string text, out KernelTraceCounts counts)
    {
        using var r = Reader(text);
        var list = new List<FtraceEvent>();
        while (r.Next(out var e)) list.Add(e);
        counts = r.Counts;
        return list;
    }

    [Fact]
    public void Map_and_unmap_lines_as_tracefs_prints_them()
    {
        // iommu_map_nosync -> trace_map(orig_iova, orig_paddr, orig_size); __iommu_unmap -> trace_unmap(orig_iova, size, unmapped)
        const string text = """
            # tracer: nop
            #
               gem_exec_gttfil-1010    [004] .N...    50.126420: map: IOMMU: iova=0x00003fffffc00000 - 0x0000400000000000 paddr=0x00000001b9400000 size=4194304
                    qemu-kvm-4575    [008] .......   438.308478: unmap: IOMMU: iova=0x0000000000000000 - 0x0000000000001000 size=4096 unmapped_size=4096
            """;
        var ev = All(text, out var c);
        Assert.Equal(2, ev.Count);
        Assert.Equal(FtraceEventKind.Map, ev[0].Kind);
        Assert.Equal(0x3fffffc00000UL, ev[0].Iova);
        Assert.Equal(0x1b9400000UL, ev[0].Paddr);
        Assert.Equal(4194304UL, ev[0].Size);
        Assert.Equal(4, ev[0].Cpu);
        Assert.Equal(50_126_420_000_000L, ev[0].TimePs);
        Assert.Equal(3, ev[0].Line);
        Assert.Equal(FtraceEventKind.Unmap, ev[1].Kind);
        Assert.Equal(8, ev[1].Cpu);
        Assert.Equal(4096UL, ev[1].UnmappedSize);
        Assert.Equal(1, c.Maps);
        Assert.Equal(1, c.Unmaps);
    }

    [Fact]
    public void Trace_cmd_report_lines_without_flags_and_with_nanosecond_timestamps()
    {
        const string text = """
            cpus=4
                  <idle>-0     [002]  1523.100000123: map:                  IOMMU: iova=0x00000000fffff000 - 0x0000000100000000 paddr=0x0000000123401000 size=4096
            (udev-worker)-532  [010]  1523.100000200: unmap: IOMMU: iova=0x00000000fffff000 size=4096 unmapped_size=4096
            """;
        var ev = All(text, out _);
        Assert.Equal(2, ev.Count);
        Assert.Equal(1_523_100_000_123_000L, ev[0].TimePs);
        Assert.Equal(2, ev[0].Cpu);
        Assert.Equal(10, ev[1].Cpu); // a task name with a '-' and parentheses
        Assert.Equal(0xfffff000UL, ev[1].Iova); // the pre-5.12 format without the range end
    }

    [Fact]
    public void Qi_submit_lines_are_decoded_by_type_and_granularity()
    {
        // The sample lines of the commit that added the event (iommu/vt-d: Add qi_submit trace event).
        const string text = """
             kworker/0:1-12  [000] d..1.  10.000001: qi_submit: iotlb_inv dmar1: 0x100e2 0x0 0x0 0x0
             kworker/0:1-12  [000] d..1.  10.000002: qi_submit: dev_tlb_inv dmar1: 0x1000000003 0x7ffffffffffff001 0x0 0x0
             kworker/0:1-12  [000] d..1.  10.000003: qi_submit: iotlb_inv dmar2: 0x800f2 0xf9a00005 0x0 0x0
            """;
        var ev = All(text, out var c);
        Assert.Equal(3, ev.Count);
        Assert.All(ev, e => Assert.Equal(FtraceEventKind.QiSubmit, e.Kind));
        Assert.Equal(QiType.DevTlbInv, ev[1].Qi);
        Assert.Equal(0xf9a00005UL, ev[2].Qw1);
        Assert.Equal(1, c.IotlbDomain); // 0x100e2: granularity 2 (domain-selective), DID 1
        Assert.Equal(1, c.IotlbPage);   // 0x800f2: granularity 3 (page-selective), DID 8
        Assert.Equal(2, c.IotlbInvalidations);
        Assert.Equal(1, c.DeviceTlbInvalidations);
        Assert.Equal("unknown", c.RecordedMode);
    }

    [Fact]
    public void Io_page_fault_lines_give_the_iova_and_the_write_flag()
    {
        // report_iommu_fault -> trace_io_page_fault(dev, iova, flags); flags bit 0 = IOMMU_FAULT_WRITE
        const string text = """
                 <idle>-0       [001] d.h1.   77.000100: io_page_fault: IOMMU:ixgbe 0000:03:00.0 iova=0x00000000ffffe040 flags=0x0001
                 <idle>-0       [001] d.h1.   77.000200: io_page_fault: IOMMU:ixgbe 0000:03:00.0 iova=0x00000000ffffd000 flags=0x0000
            """;
        var ev = All(text, out var c);
        Assert.Equal(0xffffe040UL, ev[0].Iova);
        Assert.True(ev[0].FaultWrite);
        Assert.False(ev[1].FaultWrite);
        Assert.Equal(2, c.PageFaults);
    }

    [Fact]
    public void Other_events_and_lost_events_are_counted_never_dropped()
    {
        const string text = """
            CPU:2 [LOST 17 EVENTS]
                 <idle>-0       [001] d.h1.   1.000001: irq_handler_entry: irq=24 name=eth1
                 <idle>-0       [001] d.h1.   1.000002: irq_handler_entry: irq=24 name=eth1
                 <idle>-0       [001] ..s1.   1.000003: attach_device_to_domain: IOMMU: device=0000:03:00.0
            CPU 3 is empty
            """;
        var ev = All(text, out var c);
        Assert.Empty(ev);
        Assert.Equal(17, c.LostEvents);
        Assert.Equal(3, c.UnknownEvents);
        Assert.Equal(2, c.Unknown["irq_handler_entry"]);
        Assert.Equal(1, c.Unknown["attach_device_to_domain"]);
        var keys = c.Summary().Select(kv => kv.Key).ToList();
        Assert.Contains("unknownEventsByName.irq_handler_entry", keys);
    }

    [Theory]
    [InlineData("just some text", "not an ftrace event line")]
    [InlineData("  ip-1 [001] .....  map: IOMMU: iova=0x1000 - 0x2000 paddr=0x0 size=4096", "timestamp")]
    [InlineData("  ip-1 [001] .....  123456789: map: IOMMU: iova=0x1000 - 0x2000 paddr=0x0 size=4096", "counter clock")]
    [InlineData("  ip-1 [001] .....  1.000001: map: IOMMU: iova=0x1000 paddr=0x0", "expected 'IOMMU: iova=")]
    [InlineData("  ip-1 [001] .....  1.000001: map: IOMMU: iova=0x1800 - 0x2800 paddr=0x0 size=4096", "4 KiB aligned")]
    [InlineData("  ip-1 [001] .....  1.000001: map: IOMMU: iova=0x1000 - 0x3000 paddr=0x0 size=4096", "range end")]
    [InlineData("  ip-1 [001] .....  1.000001: map: IOMMU: iova=0xzz - 0x3000 paddr=0x0 size=4096", "malformed value")]
    [InlineData("  ip-1 [001] .....  1.000001: map: iova=0x1000 - 0x2000 paddr=0x0 size=4096", "must start with 'IOMMU:'")]
    [InlineData("  ip-1 [001] .....  1.000001: unmap: IOMMU: iova=0x1000 - 0x2000 size=4096 unmapped_size=8192", "unmapped_size")]
    [InlineData("  ip-1 [001] .....  1.000001: qi_submit: iotlb_inv dmar0: 0x300f3 0x0 0x0 0x0", "does not match qw0")]
    [InlineData("  ip-1 [001] .....  1.000001: qi_submit: iotlb_inv dmar0: 0x300f2 0x0", "four hex quadwords")]
    [InlineData("CPU:2 [LOST many EVENTS]", "lost-events marker")]
    public void A_malformed_line_names_the_file_and_line(string bad, string what)
    {
        string text = "# tracer: nop\n  ip-1 [001] .....  1.000000: map: IOMMU: iova=0x100000 - 0x101000 paddr=0x0 size=4096\n" + bad + "\n";
        var ex = Assert.Throws<TraceFormatException>(() => All(text, out _));
        Assert.Equal(3, ex.LineNumber);
        Assert.StartsWith("k.trace:3: ", ex.Message);
        Assert.Contains(what, ex.Message);
    }

    [Fact]
    public void Time_going_backwards_is_an_error()
    {
        const string text = "  ip-1 [001] .....  2.000000: map: IOMMU: iova=0x100000 - 0x101000 paddr=0x0 size=4096\n"
                          + "  ip-1 [001] .....  1.999999: unmap: IOMMU: iova=0x100000 - 0x101000 size=4096 unmapped_size=4096\n";
        var ex = Assert.Throws<TraceFormatException>(() => All(text, out _));
        Assert.Equal(2, ex.LineNumber);
        Assert.Contains("backwards", ex.Message);
    }

    [Fact]
    public void The_shipped_samples_parse_and_say_how_they_were_invalidated()
    {
        string dir = Path.Combine(RepoRoot(), "configs", "traces");
        using (var r = FtraceReader.Open(Path.Combine(dir, "nic-ping-strict.trace")))
        {
            while (r.Next(out _)) { }
            Assert.Equal("strict", r.Counts.RecordedMode);
            Assert.Equal(r.Counts.Unmaps, r.Counts.IotlbPage); // one page-selective iotlb_inv per strict unmap
        }
        using (var r = FtraceReader.Open(Path.Combine(dir, "nic-ping-lazy.trace")))
        {
            while (r.Next(out _)) { }
            Assert.Equal("lazy", r.Counts.RecordedMode);
            Assert.True(r.Counts.IotlbDomain > 0 && r.Counts.IotlbDomain < r.Counts.Unmaps);
        }
    }

    internal static string RepoRoot()
    {
        var d = new DirectoryInfo(AppContext.BaseDirectory);
        while (d is not null && !File.Exists(Path.Combine(d.FullName, "IommuSim.sln"))) d = d.Parent;
        return d?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
