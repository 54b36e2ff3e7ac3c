using System.Text.Json;

namespace IommuSim.Cli.Tests.Timeline;

/// <summary>A parsed trace-event file, with the checks every timeline must pass.</summary>
internal sealed class TraceFile
{
    public sealed record Event(string Ph, string Name, string Cat, int Pid, int Tid, long TsPs, long DurPs, long? Id, JsonElement Args);

    public List<Event> Events { get; } = [];
    public Dictionary<int, string> Processes { get; } = [];
    public Dictionary<(int, int), string> Threads { get; } = [];
    public JsonElement OtherData { get; }
    private readonly JsonDocument _doc;

    public TraceFile(string path)
    {
        _doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = _doc.RootElement;
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        Assert.Equal("ns", root.GetProperty("displayTimeUnit").GetString());
        OtherData = root.GetProperty("otherData");
        foreach (var e in root.GetProperty("traceEvents").EnumerateArray())
        {
            string ph = e.GetProperty("ph").GetString()!;
            Assert.Contains(ph, new[] { "X", "i", "M", "s", "t", "f" });
            string name = e.GetProperty("name").GetString()!;
            int pid = e.GetProperty("pid").GetInt32(), tid = e.GetProperty("tid").GetInt32();
            var args = e.TryGetProperty("args", out var a) ? a : default;
            if (ph == "M")
            {
                if (name == "process_name") Processes[pid] = args.GetProperty("name").GetString()!;
                else if (name == "thread_name") Threads[(pid, tid)] = args.GetProperty("name").GetString()!;
                continue;
            }
            long ts = Ps(e.GetProperty("ts"));
            long dur = ph == "X" ? Ps(e.GetProperty("dur")) : 0;
            Assert.True(ts >= 0 && dur >= 0, $"negative time in {e}");
            long? id = e.TryGetProperty("id", out var idv) ? idv.GetInt64() : null;
            Events.Add(new Event(ph, name, e.GetProperty("cat").GetString()!, pid, tid, ts, dur, id, args));
        }
    }

    /// <summary>µs with six decimals, back to exact ps.</summary>
    private static long Ps(JsonElement v) => (long)decimal.Round(v.GetDecimal() * 1_000_000m);

    public IEnumerable<Event> Slices => Events.Where(e => e.Ph == "X");

    public IEnumerable<Event> Requests => Slices.Where(e => e.Cat == "dma");

    public int Pid(string processPrefix) => Processes.Single(p => p.Value.StartsWith(processPrefix, StringComparison.Ordinal)).Key;

    /// <summary>Slices on one thread either nest or are disjoint: never a partial overlap.</summary>
    public void AssertSlicesNest()
    {
        foreach (var track in Slices.GroupBy(e => (e.Pid, e.Tid)))
        {
            var stack = new Stack<Event>();
            foreach (var s in track.OrderBy(e => e.TsPs).ThenByDescending(e => e.DurPs))
            {
                while (stack.Count > 0 && stack.Peek().TsPs + stack.Peek().DurPs <= s.TsPs) stack.Pop();
                if (stack.Count > 0)
                {
                    var p = stack.Peek();
                    Assert.True(s.TsPs + s.DurPs <= p.TsPs + p.DurPs,
                        $"{track.Key}: '{s.Name}' [{s.TsPs}, {s.TsPs + s.DurPs}) overlaps '{p.Name}' [{p.TsPs}, {p.TsPs + p.DurPs}) partially");
                }
                stack.Push(s);
            }
        }
    }

    /// <summary>Each request's phase slices tile it: back to back from issue to completion, so they add up to its latency.</summary>
    public void AssertPhasesTileRequests()
    {
        var phases = Slices.Where(e => e.Cat == "dma.phase").GroupBy(e => (e.Pid, e.Tid)).ToDictionary(g => g.Key, g => g.OrderBy(e => e.TsPs).ToList());
        foreach (var r in Requests)
        {
            var mine = phases[(r.Pid, r.Tid)].Where(p => p.TsPs >= r.TsPs && p.TsPs + p.DurPs <= r.TsPs + r.DurPs).ToList();
            Assert.NotEmpty(mine);
            long t = r.TsPs;
            foreach (var p in mine)
            {
                Assert.Equal(t, p.TsPs);
                Assert.True(p.DurPs > 0);
                Assert.Contains(p.Name, IommuSim.Cli.Timeline.TimelineNames.PhaseNames);
                t += p.DurPs;
            }
            Assert.Equal(r.TsPs + r.DurPs, t);
            Assert.Equal(mine.Sum(p => p.DurPs), r.DurPs);
            // The request's own latency argument (ns) is its slice length.
            Assert.Equal(r.DurPs, (long)decimal.Round(r.Args.GetProperty("latencyNs").GetDecimal() * 1000m));
        }
    }

    /// <summary>Every request is one flow: one start and one end, with steps between, in time order.</summary>
    public void AssertFlows()
    {
        var flows = Events.Where(e => e.Ph is "s" or "t" or "f").GroupBy(e => e.Id!.Value).ToList();
        var byThread = Slices.GroupBy(e => (e.Pid, e.Tid)).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(Requests.Count(), flows.Count);
        foreach (var f in flows)
        {
            Assert.Single(f, e => e.Ph == "s");
            Assert.Single(f, e => e.Ph == "f");
            long s = f.Single(e => e.Ph == "s").TsPs, end = f.Single(e => e.Ph == "f").TsPs;
            Assert.All(f, e => Assert.InRange(e.TsPs, s, end));
            // Each flow event points into a slice on its thread.
            Assert.All(f, e => Assert.Contains(byThread[(e.Pid, e.Tid)], x => x.TsPs <= e.TsPs && e.TsPs < x.TsPs + x.DurPs));
        }
    }
}
