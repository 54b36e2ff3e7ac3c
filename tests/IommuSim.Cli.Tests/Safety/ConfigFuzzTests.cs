using System.Globalization;
using System.Text.Json.Nodes;
using CsCheck;
using IommuSim.Cli.Commands;
using IommuSim.Simulation.Config;
using IommuSim.Simulation.Running;
using IommuSim.Workloads.Trace;

namespace IommuSim.Cli.Tests.Safety;

/// <summary>One change to a config: which node (an index into its nodes, modulo their count), what to do, which value, and whether through --set.</summary>
public readonly record struct ConfigMutation(int Seed, int Node, int Kind, int Value, bool ViaSet)
{
    public override string ToString() => $"new({Seed}, {Node}, {Kind}, {Value}, {(ViaSet ? "true" : "false")})";
}

/// <summary>
/// Issue 13, item 5 (config half): mutated configs (hostile values, wrong types, removed keys,
/// unknown keys, duplicated list elements, the same through --set) have exactly two allowed
/// outcomes: accepted, and then a short simulation in process completes; or a ConfigError whose
/// every message names the file, the --set argument or a trace line. Anything else (another
/// exception, a message naming nothing) fails, and the shrunk case is printed.
/// </summary>
public class ConfigFuzzTests
{
    /// <summary>Mutated configs per CI run, from a fixed seed (IOMMUSIM_FUZZ_CONFIGS and IOMMUSIM_FUZZ_SEED=random explore further): about 10-30 s on the 2-core CI machine.</summary>
    private const int Cases = 1500;
    private const string FixedSeed = "4yjyQE6DI4j2";

    private static readonly string[] Seeds = BuildSeeds();

    private static string[] BuildSeeds()
    {
        var list = new List<string>();
        foreach (var design in new[] { "single-stage", "nested", "shadow", "passthrough", "off" })
            list.Add(CliHarness.SmallConfig(name: "fuzz", design: design, maxRequests: 300));
        list.Add(CliHarness.SmallConfig(name: "fuzz", maxRequests: 300, workload: """{ "device": "dev0", "type": "zipf", "bytes": 256, "arrival": "bursty", "rateMrps": 2, "burstSize": 8, "workingSetBytes": "4MiB" }"""));
        list.Add(CliHarness.SmallConfig(name: "fuzz", maxRequests: 300, workload: """{ "device": "dev0", "type": "stream", "bytes": 4096, "mapping": "per-request", "strayDmaFraction": 0.1, "workingSetBytes": "1MiB" }""", extraRoot: """, "translation": { "design": "single-stage", "dmaApi": { "mode": "lazy" } }""").Replace("\"translation\": { \"design\": \"single-stage\" },", "", StringComparison.Ordinal));
        list.Add(CliHarness.SmallConfig(name: "fuzz", maxRequests: 300, workload: """{ "device": "dev0", "type": "trace", "path": "t.csv" }"""));
        foreach (var f in new[] { "configs/nic/nic100-recycle.json", "configs/nvme/nvme-randread-qd32.json", "configs/ats/ats-demand-paging.json" })
        {
            string p = Path.Combine(CliHarness.RepoRoot, f);
            if (File.Exists(p)) list.Add(File.ReadAllText(p));
        }
        return list.ToArray();
    }

    private static readonly JsonNode?[] Values =
    [
        0, -1, 1, 2, 3, 7, 4097, 65536, 1e-300, 1e-9, 0.0001, 0.5, 1e20, 1e308, long.MaxValue, ulong.MaxValue, (double)long.MaxValue * 4, int.MaxValue, int.MinValue,
        "", "..", ".", "a/b", new string('n', 300), "NaN", "Infinity", "-1", "0x", "0xfee00000", "0xfffffffffffff000", "0x1000000000000", "1TiB", "16EiB", "-4KiB", "4K", "2M", "1G",
        "nested", "shadow", "off", "passthrough", "single-stage", "lazy", "none", "poisson", "bursty", "constant", "trace", "nic-rx", "nvme", "plru", "kernel", "vfio-container",
        "0000:03:00.0", "vm0", "dev0", "per-request", "smmuv3", true, false, null, new JsonObject(), new JsonArray(), new JsonObject { ["x"] = 1 }, new JsonArray(1, 2),
    ];

    private static readonly Gen<ConfigMutation> Mutation =
        Gen.Select(Gen.Int[0, 99], Gen.Int[0, 499], Gen.Int[0, 9], Gen.Int[0, Values.Length - 1], Gen.Bool,
            (s, n, k, v, set) => new ConfigMutation(s, n, k, v, set));

    private static readonly Gen<ConfigMutation[]> Mutations = Mutation.Array[1, 4];

    private static string Print(ConfigMutation[] ms) => "[" + string.Join(", ", ms) + "]";

    [Fact]
    public void Mutated_configs_are_accepted_and_run_or_refused_with_a_message()
    {
        long iter = long.TryParse(Environment.GetEnvironmentVariable("IOMMUSIM_FUZZ_CONFIGS"), out long n) ? n : Cases;
        string? seed = Environment.GetEnvironmentVariable("IOMMUSIM_FUZZ_SEED") switch { null or "" => FixedSeed, "random" => null, var s => s };
        int accepted = 0, refused = 0, ran = 0;
        Mutations.Sample(ms =>
        {
            switch (Check(ms))
            {
                case Outcome.Refused: Interlocked.Increment(ref refused); break;
                case Outcome.Ran: Interlocked.Increment(ref ran); Interlocked.Increment(ref accepted); break;
                default: Interlocked.Increment(ref accepted); break;
            }
        }, iter: iter, seed: seed, print: Print);
        // Both outcomes must be reached, or the harness would test nothing.
        Assert.True(ran > iter / 20 && refused > iter / 5, $"{iter} configs: {accepted} accepted ({ran} run), {refused} refused");
    }

    // ---- shrunk failing cases found by the harness, kept as regression tests ----------------------

    /// <summary>A string key set to nothing through --set bound null, and the validator threw ArgumentNullException.</summary>
    [Fact]
    public void Regression_a_string_key_set_to_nothing_is_refused_with_a_message()
        => Assert.Equal(Outcome.Refused, Check([new(93, 89, 3, 60, true)]));

    internal enum Outcome { Refused, Accepted, Ran }

    /// <summary>Applies the mutations, then loads (and if accepted, runs) the config; throws on any outcome other than the two allowed.</summary>
    internal static Outcome Check(ConfigMutation[] ms)
    {
        using var h = new CliHarness();
        h.Write("t.csv", "time_ns,device,pasid,iova,bytes,op\n0,dev0,,0x100000000,64,R\n10.5,dev0,,0x100001000,128,W\n");
        var root = JsonNode.Parse(Seeds[ms[0].Seed % Seeds.Length])!;
        var sets = new List<string>();
        foreach (var m in ms) Apply(root, m, sets);
        string path = h.Write("c.json", root.ToJsonString());
        h.Write("case.txt", Print(ms) + "\n" + string.Join("\n", sets)); // for a case that hangs: the harness folder stays
        LoadedConfig loaded;
        try
        {
            loaded = ConfigLoader.Load(path, sets, useEnvironment: false);
            SimulationRunner.Preflight(loaded);
        }
        catch (ConfigError e)
        {
            foreach (string msg in e.Messages)
                Assert.True(msg.Contains(path, StringComparison.Ordinal) || msg.Contains("--set ", StringComparison.Ordinal), $"message names neither the file nor a --set argument: {msg}");
            return Outcome.Refused;
        }
        catch (TraceFormatException e)
        {
            Assert.Contains("t.csv", e.Message, StringComparison.Ordinal);
            return Outcome.Refused;
        }
        // Accepted: a short simulation must complete. Cap its length (the values themselves were validated).
        var s = loaded.Config.Simulation;
        var caps = new Dictionary<string, string?>
        {
            ["simulation:maxRequests"] = Math.Clamp(s.MaxRequests, 1, 300).ToString(CultureInfo.InvariantCulture),
            ["simulation:warmupRequests"] = Math.Min(s.WarmupRequests, 50).ToString(CultureInfo.InvariantCulture),
        };
        long mapped = loaded.Config.Devices.Sum(d => d.DmaRegions.Sum(r => r.Bytes.Bytes))
                      + (loaded.Config.Translation.Design is "nested" or "shadow" ? loaded.Config.Vms.Sum(v => v.MemoryMiB << 20) : 0);
        if (mapped > 1L << 30) return Outcome.Accepted; // setup alone would take seconds; validated is what is checked here
        // --set wins over the caps, so the run-length keys (already validated above) are left out of the capped load.
        var runSets = sets.Where(x => !x.StartsWith("simulation:maxRequests=", StringComparison.OrdinalIgnoreCase) && !x.StartsWith("simulation:warmupRequests=", StringComparison.OrdinalIgnoreCase)).ToList();
        var capped = ConfigLoader.Load(path, runSets, extraOverrides: caps, useEnvironment: false);
        RunOutput run;
        try { run = SimulationRunner.Run(capped); }
        catch (Exception e) { throw new InvalidOperationException($"accepted config failed to run: {e.Message}\n--set {string.Join(" --set ", sets)}\n{root.ToJsonString()}", e); }
        Assert.True(run.EndPs >= 0);
        return Outcome.Ran;
    }

    private static void Apply(JsonNode root, ConfigMutation m, List<string> sets)
    {
        var nodes = new List<(JsonNode? Parent, string Path, string? Key, int Index)>();
        Collect(root, "", null, null, -1, nodes);
        var (parent, path, key, index) = nodes[m.Node % nodes.Count];
        JsonNode? value = Values[m.Value]?.DeepClone();
        if (m.ViaSet && path.Length > 0 && value is not (JsonObject or JsonArray))
        {
            string text = value is null ? "" : value is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.String ? v.GetValue<string>() : value.ToJsonString();
            sets.Add($"{path}={text}");
            return;
        }
        switch (m.Kind)
        {
            case 0 or 1 or 2 or 3 or 4: // replace the value
                if (parent is JsonObject po && key is not null) po[key] = value;
                else if (parent is JsonArray pa) pa[index] = value;
                break;
            case 5: // remove the key or element
                if (parent is JsonObject ro && key is not null) ro.Remove(key);
                else if (parent is JsonArray ra) ra.RemoveAt(index);
                break;
            case 6: // duplicate a list element
                if (parent is JsonArray da) da.Add(da[index]?.DeepClone());
                break;
            case 7: // an unknown key next to it
                if (parent is JsonObject uo) uo["zz" + m.Value.ToString(CultureInfo.InvariantCulture)] = value;
                break;
            default: // the value as a string, or a string as a number
                if (parent is JsonObject so && key is not null) so[key] = so[key] is JsonValue jv ? JsonValue.Create(jv.ToJsonString().Trim('"')) : value;
                break;
        }
    }

    private static void Collect(JsonNode? node, string path, JsonNode? parent, string? key, int index, List<(JsonNode?, string, string?, int)> into)
    {
        if (parent is not null) into.Add((parent, path, key, index));
        switch (node)
        {
            case JsonObject o:
                foreach (var kv in o.ToList()) Collect(kv.Value, path.Length == 0 ? kv.Key : $"{path}:{kv.Key}", o, kv.Key, -1, into);
                break;
            case JsonArray a:
                for (int i = 0; i < a.Count; i++) Collect(a[i], $"{path}:{i}", a, null, i, into);
                break;
        }
        if (parent is null && into.Count == 0) into.Add((null, "", null, -1));
    }
}
