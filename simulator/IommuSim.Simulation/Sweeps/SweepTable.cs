using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Results;

namespace IommuSim.Simulation.Sweeps;

/// <summary>
/// sweep.csv: one row per point in index order. Columns: <c>point</c>, <c>seed</c>, the vary keys
/// (in sweep-file order, values as written there), then the flattened summary without its
/// <c>seed</c> (already the second column) in <see cref="SummaryKeys.Order"/> order over the union
/// of all points' keys. A key a point lacks (a fault reason it never saw) is an empty cell.
/// </summary>
public sealed class SweepTable
{
    public const string PointColumn = "point";
    public const string SeedColumn = "seed";

    public SweepTable(IReadOnlyList<string> columns, IReadOnlyList<string[]> rows)
    {
        Columns = columns;
        Rows = rows;
        _index = columns.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
    }

    private readonly Dictionary<string, int> _index;

    public IReadOnlyList<string> Columns { get; }
    public IReadOnlyList<string[]> Rows { get; }

    public bool Has(string column) => _index.ContainsKey(column);

    public string Cell(string[] row, string column) => _index.TryGetValue(column, out int i) && i < row.Length ? row[i] : "";

    /// <summary>Builds the table from the points' summary files (<paramref name="summaryOf"/> gives a point's summary.json path).</summary>
    public static SweepTable FromPoints(SweepSpec spec, IReadOnlyList<SweepPoint> points, Func<SweepPoint, string> summaryOf)
    {
        var flat = new List<Dictionary<string, string>>(points.Count);
        var keyLists = new List<IReadOnlyList<string>>(points.Count);
        foreach (var p in points)
        {
            string path = summaryOf(p);
            JsonNode? node;
            try { node = JsonNode.Parse(File.ReadAllText(path)); }
            catch (JsonException e) { throw new ConfigError($"sweep error: {path}: not a valid summary.json: {e.Message}"); }
            var row = new Dictionary<string, string>(StringComparer.Ordinal);
            var keys = new List<string>();
            foreach (var kv in SummaryBuilder.Flatten(node))
            {
                row[kv.Key] = CellText(kv.Value);
                keys.Add(kv.Key);
            }
            flat.Add(row);
            keyLists.Add(keys);
        }
        var summaryCols = SummaryKeys.MergeOrder(keyLists).Where(k => k != SeedColumn).ToList();
        var columns = new List<string> { PointColumn, SeedColumn };
        columns.AddRange(spec.VaryKeys);
        columns.AddRange(summaryCols);
        var rows = new List<string[]>(points.Count);
        for (int i = 0; i < points.Count; i++)
        {
            var p = points[i];
            var r = new List<string> { p.Index.ToString(CultureInfo.InvariantCulture), p.Seed.ToString(CultureInfo.InvariantCulture) };
            r.AddRange(p.Values.Select(v => v.Value));
            r.AddRange(summaryCols.Select(c => flat[i].TryGetValue(c, out var v) ? v : ""));
            rows.Add([.. r]);
        }
        return new SweepTable(columns, rows);
    }

    private static string CellText(JsonNode? v) => v switch
    {
        null => "",
        JsonValue jv when jv.GetValueKind() == JsonValueKind.String => jv.GetValue<string>(),
        _ => v.ToJsonString(),
    };

    public string ToCsv()
    {
        var sb = new StringBuilder();
        sb.AppendJoin(',', Columns.Select(Escape)).Append('\n');
        foreach (var r in Rows) sb.AppendJoin(',', r.Select(Escape)).Append('\n');
        return sb.ToString();
    }

    private static string Escape(string s)
        => s.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;

    public static SweepTable ParseCsv(string text)
    {
        var records = new List<string[]>();
        var fields = new List<string>();
        var cur = new StringBuilder();
        bool quoted = false, any = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { cur.Append('"'); i++; }
                    else quoted = false;
                }
                else cur.Append(c);
                continue;
            }
            switch (c)
            {
                case '"': quoted = true; any = true; break;
                case ',': fields.Add(cur.ToString()); cur.Clear(); any = true; break;
                case '\r': break;
                case '\n':
                    fields.Add(cur.ToString()); cur.Clear();
                    records.Add([.. fields]); fields.Clear(); any = false;
                    break;
                default: cur.Append(c); any = true; break;
            }
        }
        if (any || cur.Length > 0) { fields.Add(cur.ToString()); records.Add([.. fields]); }
        if (records.Count == 0) return new SweepTable([], []);
        return new SweepTable(records[0], records.Skip(1).ToList());
    }

    /// <summary>The CSV with the wall-clock columns blanked (what must be identical between two runs of a sweep).</summary>
    public string ToCsvWithoutWallClock()
    {
        var wall = SummaryBuilder.WallClockKeys.Select(k => Columns.ToList().IndexOf(k)).Where(i => i >= 0).ToHashSet();
        var rows = Rows.Select(r => r.Select((v, i) => wall.Contains(i) ? "" : v).ToArray()).ToList();
        return new SweepTable(Columns, rows).ToCsv();
    }
}
