using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using IommuSim.Engine.Units;
using Microsoft.Extensions.Configuration;

namespace IommuSim.Simulation.Config;

/// <summary>A config after loading, binding and validation.</summary>
public sealed record LoadedConfig(SimulationConfig Config, string SourcePath, string ResolvedJson, string Hash)
{
    /// <summary>Folder relative paths inside the config (trace files) are resolved against.</summary>
    public string BaseDirectory => Path.GetDirectoryName(Path.GetFullPath(SourcePath)) ?? ".";
}

/// <summary>
/// Reads a config: the JSON file, then <c>IOMMUSIM__</c> environment variables, then
/// <c>--set KEY=VALUE</c> overrides (Microsoft.Extensions.Configuration), checks every key and
/// value against the typed options (unknown keys and wrong types are errors naming the key path),
/// binds, and validates ranges and consistency. Any problem raises <see cref="ConfigError"/>.
/// </summary>
public static class ConfigLoader
{
    public const string EnvironmentPrefix = "IOMMUSIM__";

    public static LoadedConfig Load(string path, IEnumerable<string>? sets = null, ulong? seed = null,
        IReadOnlyDictionary<string, string?>? extraOverrides = null, bool useEnvironment = true)
    {
        if (!File.Exists(path)) throw new ConfigError($"config error: {path}: file not found");
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ConfigError($"config error: {path}: cannot read: {e.Message}"); }
        CheckJsonSyntax(path, text);

        var overrides = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        // Where each overridden key came from, so that an error blames what the user wrote.
        var sources = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (useEnvironment)
            foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
                if (e.Key is string k && k.StartsWith(EnvironmentPrefix, StringComparison.OrdinalIgnoreCase))
                    sources[k[EnvironmentPrefix.Length..].Replace("__", ":", StringComparison.Ordinal)] = $"environment variable {k}";
        if (extraOverrides is not null)
            foreach (var kv in extraOverrides) overrides[kv.Key] = kv.Value;
        foreach (string s in sets ?? [])
        {
            int eq = s.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || s[..eq].Trim().Length == 0) throw new ConfigError($"config error: --set {s}: expected KEY=VALUE (for example iommu:iotlb:ways=8)");
            overrides[s[..eq].Trim()] = s[(eq + 1)..].Trim();
            sources[s[..eq].Trim()] = $"--set {s}";
        }
        if (seed is ulong sd) overrides["simulation:seed"] = sd.ToString(CultureInfo.InvariantCulture);

        var builder = new ConfigurationBuilder();
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(text));
        builder.AddJsonStream(stream);
        if (useEnvironment) builder.AddEnvironmentVariables(EnvironmentPrefix);
        builder.AddInMemoryCollection(overrides);
        IConfigurationRoot root;
        try { root = builder.Build(); }
        catch (Exception e) when (e is FormatException or InvalidDataException or JsonException)
        {
            throw new ConfigError($"config error: {path}: {e.Message}");
        }

        var errors = new List<string>();
        CheckSection(root, typeof(SimulationConfig), "", errors);
        if (errors.Count > 0) throw new ConfigError(errors.Select(e => Blame(path, sources, e)).ToList());

        SimulationConfig cfg;
        try
        {
            cfg = root.Get<SimulationConfig>(o => o.ErrorOnUnknownConfiguration = true) ?? new SimulationConfig();
        }
        catch (InvalidOperationException e)
        {
            throw new ConfigError($"config error: {path}: {e.Message}");
        }

        NullStringsToEmpty(cfg, new System.Reflection.NullabilityInfoContext());
        ConfigValidator.Validate(cfg, Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".", errors);
        if (errors.Count > 0) throw new ConfigError(errors.Select(e => Blame(path, sources, e)).ToList());

        string json = ToJson(cfg);
        return new LoadedConfig(cfg, path, json, HashOf(json));
    }

    /// <summary>
    /// "config error: WHERE: message", WHERE being the --set argument or environment variable that
    /// set the key the message is about (the message starts with its key path), else the file.
    /// </summary>
    internal static string Blame(string file, IReadOnlyDictionary<string, string> sources, string message)
    {
        int end = message.IndexOfAny([' ', '=']);
        string key = (end < 0 ? message : message[..end]).TrimEnd(':');
        string? best = null;
        foreach (var kv in sources)
        {
            bool related = string.Equals(kv.Key, key, StringComparison.OrdinalIgnoreCase)
                || key.StartsWith(kv.Key + ":", StringComparison.OrdinalIgnoreCase)
                || kv.Key.StartsWith(key + ":", StringComparison.OrdinalIgnoreCase);
            if (related && (best is null || kv.Key.Length > best.Length)) best = kv.Key;
        }
        return best is null ? $"config error: {file}: {message}" : $"config error: {sources[best]}: {message} (config {file})";
    }

    /// <summary>
    /// A key set to null or nothing ("name": null, --set workloads:0:device=) binds null even where
    /// the options declare a non-nullable string; make it "" so the range checks report it.
    /// </summary>
    private static void NullStringsToEmpty(object? o, System.Reflection.NullabilityInfoContext nullability)
    {
        if (o is null || o is string || o.GetType().IsPrimitive) return;
        if (o is System.Collections.IList list)
        {
            foreach (var el in list) NullStringsToEmpty(el, nullability);
            return;
        }
        if (!(o.GetType().Namespace ?? "").StartsWith("IommuSim", StringComparison.Ordinal) || o.GetType().IsValueType) return;
        foreach (var p in o.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!p.CanWrite || p.GetIndexParameters().Length > 0 || p.GetSetMethod() is null) continue;
            if (p.PropertyType == typeof(string))
            {
                if (p.GetValue(o) is null && nullability.Create(p).WriteState == System.Reflection.NullabilityState.NotNull) p.SetValue(o, "");
            }
            else if (!p.PropertyType.IsValueType) NullStringsToEmpty(p.GetValue(o), nullability);
        }
    }

    public static string HashOf(string resolvedJson)
        => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(resolvedJson)))[..16];

    public static readonly JsonSerializerOptions JsonOptions = CreateJsonOptions();

    private static JsonSerializerOptions CreateJsonOptions()
    {
        var o = new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            // Only keys a config can set: derived, get-only properties (a device's requesterId) are left out.
            TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver
            {
                Modifiers = { ti =>
                {
                    if (ti.Kind != System.Text.Json.Serialization.Metadata.JsonTypeInfoKind.Object) return;
                    for (int i = ti.Properties.Count - 1; i >= 0; i--)
                        if (ti.Properties[i].Set is null) ti.Properties.RemoveAt(i);
                } },
            },
        };
        o.Converters.Add(new ByteSizeJsonConverter());
        o.Converters.Add(new AddressJsonConverter());
        return o;
    }

    /// <summary>Every key with its final value, in declaration order (config.resolved.json).</summary>
    public static string ToJson(SimulationConfig cfg) => JsonSerializer.Serialize(cfg, JsonOptions) + "\n";

    private static void CheckJsonSyntax(string path, string text)
    {
        try
        {
            using var _ = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, AllowDuplicateProperties = false });
        }
        catch (JsonException e)
        {
            long line = (e.LineNumber ?? 0) + 1;
            string msg = e.Message;
            int cut = msg.IndexOf(" Path:", StringComparison.Ordinal);
            if (cut > 0) msg = msg[..cut];
            throw new ConfigError($"config error: {path}:{line}: malformed JSON: {msg}");
        }
    }

    // ---- key and type checking ---------------------------------------------------------

    private static void CheckSection(IConfiguration section, Type type, string path, List<string> errors)
    {
        var props = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetSetMethod() is not null)
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            string childPath = path.Length == 0 ? child.Key : $"{path}:{child.Key}";
            if (!props.TryGetValue(child.Key, out var prop))
            {
                string allowed = string.Join(", ", props.Keys.Select(CamelCase));
                errors.Add($"{childPath}: unknown key (allowed under '{(path.Length == 0 ? "<root>" : path)}': {allowed})");
                continue;
            }
            CheckValue(child, prop.PropertyType, childPath, errors);
        }
    }

    private static void CheckValue(IConfigurationSection node, Type type, string path, List<string> errors)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        bool hasChildren = node.GetChildren().Any();
        if (IsLeafType(t))
        {
            if (hasChildren) { errors.Add($"{path}: expected {Describe(t)}, found an object or list"); return; }
            string? v = node.Value;
            if (v is null || (v.Length == 0 && (Nullable.GetUnderlyingType(type) is not null || t == typeof(string)))) return;
            if (!TryConvert(v, t)) errors.Add($"{path} = {v}: expected {Describe(t)}");
            return;
        }
        if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>))
        {
            var item = t.GetGenericArguments()[0];
            if (!hasChildren)
            {
                if (!string.IsNullOrEmpty(node.Value)) errors.Add($"{path} = {node.Value}: expected a list");
                return;
            }
            if (!string.IsNullOrEmpty(node.Value)) errors.Add($"{path} = {node.Value}: expected a list, not a single value");
            var indices = new List<int>();
            foreach (var el in node.GetChildren())
            {
                if (!int.TryParse(el.Key, NumberStyles.None, CultureInfo.InvariantCulture, out int idx) || idx > 1_000_000)
                {
                    errors.Add($"{path}:{el.Key}: expected a list index");
                    continue;
                }
                indices.Add(idx);
                CheckValue(el, item, $"{path}:{el.Key}", errors);
            }
            // The binder would renumber a gap (devices:7 becoming devices:1): refuse it, naming the index as written.
            indices.Sort();
            for (int k = 0; k < indices.Count; k++)
                if (indices[k] != k)
                {
                    errors.Add($"{path}:{indices[k]}: no such element; {path} has {k} (indices 0 to {k - 1}), and a new one must be {path}:{k}");
                    break;
                }
            return;
        }
        if (!string.IsNullOrEmpty(node.Value))
        {
            errors.Add($"{path} = {node.Value}: expected an object (this key is a section{(hasChildren ? "; set its keys, for example " + path + ":" + node.GetChildren().First().Key : "")})");
            return;
        }
        if (hasChildren) CheckSection(node, t, path, errors);
    }

    private static bool IsLeafType(Type t)
        => t.IsPrimitive || t == typeof(string) || t == typeof(decimal) || t.IsEnum || t == typeof(ByteSize) || t == typeof(Address);

    private static bool TryConvert(string v, Type t)
    {
        var inv = CultureInfo.InvariantCulture;
        if (t == typeof(string)) return true;
        if (t == typeof(bool)) return bool.TryParse(v, out _);
        if (t == typeof(int)) return int.TryParse(v, NumberStyles.AllowLeadingSign, inv, out _);
        if (t == typeof(long)) return long.TryParse(v, NumberStyles.AllowLeadingSign, inv, out _);
        if (t == typeof(uint)) return uint.TryParse(v, NumberStyles.None, inv, out _);
        if (t == typeof(ulong)) return ulong.TryParse(v, NumberStyles.None, inv, out _);
        if (t == typeof(double)) return double.TryParse(v, NumberStyles.Float, inv, out double d) && double.IsFinite(d);
        if (t == typeof(ByteSize)) return ByteSize.TryParse(v, out _, out _);
        if (t == typeof(Address)) return Address.TryParse(v, out _, out _);
        return true;
    }

    private static string Describe(Type t)
    {
        if (t == typeof(bool)) return "true or false";
        if (t == typeof(int) || t == typeof(long)) return "an integer";
        if (t == typeof(uint) || t == typeof(ulong)) return "a non-negative integer";
        if (t == typeof(double)) return "a number";
        if (t == typeof(ByteSize)) return "a size (bytes, or with a suffix: 64KiB, 2MiB, 1G; not negative)";
        if (t == typeof(Address)) return "an address (hex 0x... or decimal)";
        return "a string";
    }

    public static string CamelCase(string s) => s.Length == 0 ? s : char.ToLowerInvariant(s[0]) + s[1..];
}

internal sealed class ByteSizeJsonConverter : System.Text.Json.Serialization.JsonConverter<ByteSize>
{
    public override ByteSize Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => reader.TokenType == JsonTokenType.Number ? new ByteSize(reader.GetInt64()) : ByteSize.Parse(reader.GetString() ?? "");

    /// <summary>A size that is a plain byte count is written as a number, others with their suffix ("16MiB").</summary>
    public override void Write(Utf8JsonWriter writer, ByteSize value, JsonSerializerOptions options)
    {
        string text = value.ToString();
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n)) writer.WriteNumberValue(n);
        else writer.WriteStringValue(text);
    }
}

internal sealed class AddressJsonConverter : System.Text.Json.Serialization.JsonConverter<Address>
{
    public override Address Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => reader.TokenType == JsonTokenType.Number ? new Address(reader.GetUInt64()) : Address.Parse(reader.GetString() ?? "");

    public override void Write(Utf8JsonWriter writer, Address value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}
