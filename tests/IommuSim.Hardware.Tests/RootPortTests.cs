using IommuSim.Hardware.Pcie;

namespace IommuSim.Hardware.Tests;

/// <summary>The root port's flow-control credits (PCIe Base spec §2.6.1) and posted-write ordering (§2.4.1).</summary>
public class RootPortTests
{
    private sealed class Device(RootPort port) : ITlpSource
    {
        public readonly List<bool> Returned = [];
        public PcieLink Link => port.Link;
        public RootPort Port => port;
        public void OnTlpDone(Tlp tlp) { }
        public void OnCreditReturned(bool posted) => Returned.Add(posted);
    }

    private static (RootPort Port, Device Device) Make(int posted = 2, int nonPosted = 1)
    {
        var port = new RootPort(new PcieLink("dev0", new PcieOptions { PostedCredits = posted, NonPostedCredits = nonPosted }));
        var dev = new Device(port);
        port.Connect(dev);
        return (port, dev);
    }

    [Fact]
    public void A_device_may_send_only_while_the_port_has_a_credit_of_that_kind()
    {
        var (port, dev) = Make(posted: 2, nonPosted: 1);
        port.ConsumeCredit(posted: true);
        port.ConsumeCredit(posted: true);
        Assert.False(port.HasCredit(posted: true));
        Assert.True(port.HasCredit(posted: false)); // the kinds are separate buffers
        port.ConsumeCredit(posted: false);
        Assert.False(port.HasCredit(posted: false));
        port.ReturnCredit(new Tlp { IsWrite = true });                               // MWr: posted
        port.ReturnCredit(new Tlp { IsWrite = true, IsTranslationRequest = true }); // translation request: non-posted
        Assert.Equal(1, port.PostedCredits);
        Assert.Equal(1, port.NonPostedCredits);
        Assert.Equal([true, false], dev.Returned); // each return is announced to the device (UpdateFC)
    }

    [Theory]
    [InlineData(true, false, true)]   // memory write
    [InlineData(false, false, false)] // memory read
    [InlineData(true, true, false)]   // ATS translation request (a read-like request)
    public void Writes_use_posted_credits_reads_and_translation_requests_non_posted(bool write, bool translationRequest, bool posted)
        => Assert.Equal(posted, RootPort.IsPosted(new Tlp { IsWrite = write, IsTranslationRequest = translationRequest }));

    /// <summary>Every order in which 5 writes finish translation: they leave in arrival order, each once,
    /// and a write leaves as soon as every earlier one has.</summary>
    [Fact]
    public void Posted_writes_leave_in_arrival_order_whatever_order_they_are_translated_in()
    {
        const int n = 5;
        foreach (var readyOrder in Permutations(Enumerable.Range(0, n).ToArray()))
        {
            var (port, _) = Make();
            var writes = Enumerable.Range(0, n).Select(i => new Tlp { IsWrite = true, Address = (ulong)i }).ToArray();
            foreach (var w in writes) port.AppendWrite(w);
            var released = new List<int>();
            var ready = new bool[n];
            foreach (int i in readyOrder)
            {
                ready[i] = true;
                bool head = port.MarkWriteReady(writes[i]);
                Assert.Equal(released.Count == i, head);
                while (port.TryTakeReadyWrite(out var w)) released.Add((int)w.Address);
                int expected = 0;
                while (expected < n && ready[expected]) expected++;
                Assert.Equal(expected, released.Count); // nothing held back without cause
            }
            Assert.Equal(Enumerable.Range(0, n), released);
            Assert.False(port.TryTakeReadyWrite(out _));
        }
    }

    private static IEnumerable<int[]> Permutations(int[] items)
    {
        if (items.Length <= 1) { yield return items; yield break; }
        for (int i = 0; i < items.Length; i++)
            foreach (var rest in Permutations([.. items[..i], .. items[(i + 1)..]]))
                yield return [items[i], .. rest];
    }

    [Fact]
    public void The_platform_gives_each_device_its_own_root_port()
    {
        var tp = new TestPlatform();
        var second = tp.Platform.AddDevice(new Devices.DeviceOptions { Name = "dev1", Bdf = "0000:04:00.0" });
        Assert.Equal(2, tp.Platform.RootComplex.Ports.Count);
        Assert.Same(tp.Device.Port, tp.Platform.RootComplex.Ports[0]);
        Assert.Same(second.Port, tp.Platform.RootComplex.Ports[1]);
        Assert.Same(second.Link, second.Port.Link);
    }
}
