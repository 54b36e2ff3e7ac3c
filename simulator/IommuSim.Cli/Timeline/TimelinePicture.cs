using System.Globalization;
using System.Text.Json;
using IommuSim.Simulation.Config;
using ScottPlot;

namespace IommuSim.Cli.Timeline;

/// <summary>
/// Draws one request of a timeline file as a PNG, Perfetto-style: a row per thread the request
/// touches (its device tag, the link directions, the root complex, its IOMMU slot, walker and memory
/// lane) plus the invalidation queue, driver CPUs and VMM when busy; slices stacked by depth, the
/// request's flow as arrows. For the docs (Perfetto UI is not available offline) and for users who
/// want a picture without a browser.
/// </summary>
internal static class TimelinePicture
{
    private sealed record Slice(int Pid, int Tid, string Name, string Cat, long Start, long End, JsonElement Args)
    {
        public int Depth;
    }

    public static string Render(string tracePath, string pngPath, long? requestId)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(tracePath)); }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            throw new ConfigError($"error: {tracePath}: not a readable trace-event JSON file ({e.Message})");
        }
        using var _ = doc;
        var processes = new Dictionary<int, string>();
        var threads = new Dictionary<(int, int), string>();
        var slices = new List<Slice>();
        var flows = new List<(long Id, string Ph, int Pid, int Tid, long Ts)>();
        var instants = new List<(int Pid, int Tid, string Name, long Ts)>();
        if (!doc.RootElement.TryGetProperty("traceEvents", out var events) || events.ValueKind != JsonValueKind.Array)
            throw new ConfigError($"error: {tracePath}: no traceEvents array");
        static long Ps(JsonElement e, string key) => (long)decimal.Round(e.GetProperty(key).GetDecimal() * 1_000_000m);
        foreach (var e in events.EnumerateArray())
        {
            string ph = e.GetProperty("ph").GetString()!, name = e.GetProperty("name").GetString()!;
            int pid = e.GetProperty("pid").GetInt32(), tid = e.GetProperty("tid").GetInt32();
            switch (ph)
            {
                case "M" when name == "process_name": processes[pid] = e.GetProperty("args").GetProperty("name").GetString()!; break;
                case "M" when name == "thread_name": threads[(pid, tid)] = e.GetProperty("args").GetProperty("name").GetString()!; break;
                case "X":
                    long ts = Ps(e, "ts");
                    slices.Add(new Slice(pid, tid, name, e.GetProperty("cat").GetString()!, ts, ts + Ps(e, "dur"), e.GetProperty("args").Clone()));
                    break;
                case "s" or "t" or "f": flows.Add((e.GetProperty("id").GetInt64(), ph, pid, tid, Ps(e, "ts"))); break;
                case "i": instants.Add((pid, tid, name, Ps(e, "ts"))); break;
            }
        }
        var requests = slices.Where(s => s.Cat == "dma").ToList();
        if (requests.Count == 0) throw new ConfigError($"error: {tracePath}: the timeline has no requests");
        var req = requestId is long id
            ? requests.FirstOrDefault(r => r.Args.GetProperty("id").GetInt64() == id) ?? throw new ConfigError($"error: --request = {id}: no such request in {tracePath}")
            : requests.OrderByDescending(r => r.Args.GetProperty("walkReads").GetInt32()).ThenBy(r => r.Start).First();
        long rid = req.Args.GetProperty("id").GetInt64();
        long margin = Math.Max(1000, (req.End - req.Start) / 20);
        long from = req.Start - margin, to = req.End + margin;

        // Rows: the request's own threads first (flow order), then the links, root complex and software that were busy.
        var myFlow = flows.Where(f => f.Id == rid).ToList();
        var rows = new List<(int Pid, int Tid)> { (req.Pid, req.Tid) };
        void AddRow((int, int) k) { if (!rows.Contains(k)) rows.Add(k); }
        foreach (var f in myFlow) AddRow((f.Pid, f.Tid));
        var phases = slices.Where(s => s.Pid == req.Pid && s.Tid == req.Tid && s.Cat == "dma.phase" && s.Start >= req.Start && s.End <= req.End).ToList();
        string Proc(int pid) => processes.GetValueOrDefault(pid, pid.ToString(CultureInfo.InvariantCulture));
        foreach (var s in slices.Where(s => s.End > from && s.Start < to).OrderBy(s => s.Pid).ThenBy(s => s.Tid))
        {
            string p = Proc(s.Pid);
            bool mine = p.StartsWith("root port", StringComparison.Ordinal) && phases.Any(ph => ph.Start == s.Start && ph.End == s.End);
            if (mine || p.StartsWith("PCIe link", StringComparison.Ordinal) || p.StartsWith("invalidation", StringComparison.Ordinal)
                || p.StartsWith("driver CPUs", StringComparison.Ordinal) || p.StartsWith("VMM", StringComparison.Ordinal))
                AddRow((s.Pid, s.Tid));
        }
        var shown = slices.Where(s => s.End > from && s.Start < to && rows.Contains((s.Pid, s.Tid))).ToList();
        foreach (var row in shown.GroupBy(s => (s.Pid, s.Tid)))
        {
            var stack = new Stack<Slice>();
            foreach (var s in row.OrderBy(s => s.Start).ThenByDescending(s => s.End))
            {
                while (stack.Count > 0 && stack.Peek().End <= s.Start) stack.Pop();
                s.Depth = stack.Count;
                stack.Push(s);
            }
        }

        // On the IOMMU, walker and memory rows, the request's slices are those its flow points into.
        var owners = shown.Where(s => s.Depth == 0 && s.Cat != "dma" && myFlow.Any(f => f.Pid == s.Pid && f.Tid == s.Tid && s.Start <= f.Ts && f.Ts < s.End)).ToList();
        var plot = new Plot();
        plot.Font.Set("DejaVu Sans");
        string title = $"request {rid}: {req.Name}, {req.Args.GetProperty("bytes").GetInt32()} B at {req.Args.GetProperty("iova").GetString()}, " +
                       $"{req.Args.GetProperty("walkReads").GetInt32()} walk reads, {(req.End - req.Start) / 1000.0:0.#} ns";
        plot.Title(title);
        plot.Axes.Title.Label.FontSize = 17;
        plot.XLabel("simulated time since the request was issued (ns)");
        plot.Axes.Bottom.Label.FontSize = 14;
        plot.Axes.Bottom.TickLabelStyle.FontSize = 12;
        plot.Axes.Left.TickLabelStyle.FontSize = 12;
        double X(long ps) => (ps - req.Start) / 1000.0;
        int width = 1600, height = 190 + 46 * rows.Count;
        double nsPerPixel = (to - from) / 1000.0 / (width - 330);
        var palette = new ScottPlot.Palettes.Category20();
        var colors = new Dictionary<string, Color>();
        // A block's slice takes the colour of the request phase it is part of.
        var alias = new Dictionary<string, string>
        {
            ["traversal up"] = "root complex up", ["held"] = "held: IOMMU queue full", ["traversal down"] = "root complex down",
            ["MWr"] = "link up", ["MRd/Msg"] = "link up", ["CplD"] = "link down", ["Cpl"] = "link down", ["read"] = "memory",
            ["write"] = "memory", ["walk"] = "page walk", ["miss: walk"] = "page walk", ["lookup"] = "context + IOTLB lookup",
        };
        Color ColorFor(string name)
        {
            name = alias.GetValueOrDefault(name, name);
            if (!colors.TryGetValue(name, out var c)) colors[name] = c = palette.GetColor(colors.Count % palette.Colors.Length);
            return c;
        }
        // Two depths fit a row as before; a row with deeper nesting (the SMMU's STE/CD fetch reads) shares its height.
        var rowDepth = new Dictionary<(int, int), int>();
        foreach (var s in shown) rowDepth[(s.Pid, s.Tid)] = Math.Max(rowDepth.GetValueOrDefault((s.Pid, s.Tid)), s.Depth);
        foreach (var s in shown)
        {
            int row = rows.IndexOf((s.Pid, s.Tid));
            double h = 0.9 / Math.Max(2, rowDepth[(s.Pid, s.Tid)] + 1);
            double top = -row + 0.45 - s.Depth * h, bottom = top - h * 0.93;
            double x0 = X(Math.Max(s.Start, from)), x1 = X(Math.Min(s.End, to));
            var rect = plot.Add.Rectangle(x0, x1, bottom, top);
            bool highlight = s == req || (s.Cat == "dma.phase" && s.Start >= req.Start && s.End <= req.End && s.Pid == req.Pid && s.Tid == req.Tid);
            var color = s.Name.StartsWith("S1 ", StringComparison.Ordinal) ? Colors.SteelBlue.WithAlpha(0.85)
                : s.Name.StartsWith("S2 ", StringComparison.Ordinal) ? Colors.Orange.WithAlpha(0.85) : ColorFor(s.Name);
            // The request's own slices in full colour; other requests' activity on the same rows faded.
            bool own = highlight || phases.Any(p => p.Start == s.Start && p.End == s.End)
                || (s.Cat == "pcie" && phases.Any(p => p.End == s.End && p.Name is "link up" or "link down"))
                || owners.Any(o => o.Pid == s.Pid && o.Tid == s.Tid && o.Start <= s.Start && s.End <= o.End);
            rect.FillColor = own ? color : color.WithAlpha(0.3);
            rect.LineColor = Colors.Black.WithAlpha(0.6);
            rect.LineWidth = 1;
            string label = s.Name;
            if ((x1 - x0) / nsPerPixel > label.Length * 6.5 + 6)
            {
                var t = plot.Add.Text(label, (x0 + x1) / 2, (top + bottom) / 2);
                t.LabelFontSize = 11;
                t.LabelAlignment = Alignment.MiddleCenter;
                t.LabelFontColor = Colors.Black;
            }
        }
        foreach (var (pid, tid, name, ts) in instants.Where(i => i.Ts >= from && i.Ts < to))
        {
            int row = rows.IndexOf((pid, tid));
            if (row < 0) continue;
            var m = plot.Add.Marker(X(ts), -row + 0.45);
            m.MarkerShape = MarkerShape.FilledTriangleDown;
            m.MarkerSize = 9;
            m.Color = Colors.DarkRed;
        }
        // The request's flow: issue → IOMMU → walker → memory → completion.
        var points = myFlow.OrderBy(f => f.Ts).Select(f => new Coordinates(X(f.Ts), -rows.IndexOf((f.Pid, f.Tid)) + 0.25)).ToList();
        for (int i = 1; i < points.Count; i++)
        {
            var a = plot.Add.Arrow(points[i - 1], points[i]);
            a.ArrowFillColor = Colors.Black.WithAlpha(0.7);
            a.ArrowLineColor = Colors.Black.WithAlpha(0.7);
            a.ArrowWidth = 2;
            a.ArrowheadWidth = 10;
            a.ArrowheadLength = 12;
        }
        string RowName((int Pid, int Tid) k)
        {
            string p = Proc(k.Pid), t = threads.GetValueOrDefault(k, "");
            return t.Length == 0 ? p : $"{p}: {t}";
        }
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            rows.Select((_, i) => (double)-i).ToArray(), rows.Select(RowName).ToArray());
        // Legend: the request's phases (they tile it) and the two kinds of walk read.
        foreach (var ph in phases.Select(p => p.Name).Distinct())
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = ph, FillColor = ColorFor(ph) });
        if (shown.Any(s => s.Name.StartsWith("S1 ", StringComparison.Ordinal)))
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = "stage-1 table read", FillColor = Colors.SteelBlue.WithAlpha(0.85) });
        if (shown.Any(s => s.Name.StartsWith("S2 ", StringComparison.Ordinal)))
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = "stage-2 table read", FillColor = Colors.Orange.WithAlpha(0.85) });
        plot.Legend.Orientation = Orientation.Horizontal;
        plot.Legend.FontSize = 12;
        plot.ShowLegend(Edge.Bottom);
        plot.Axes.SetLimits(X(from), X(to), -rows.Count + 0.4, 0.6);
        plot.Grid.YAxisStyle.IsVisible = false;
        Plots.PlotKit.Save(plot, pngPath, width, height);
        return $"request {rid} ({rows.Count} rows) -> {pngPath}";
    }
}
