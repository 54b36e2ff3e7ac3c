using System.Globalization;

namespace IommuSim.Uapi.Script;

/// <summary>One argument value as written: resolved to a number (or text) when the statement runs.</summary>
internal readonly record struct ArgValue(string Text)
{
    public bool IsVariable => Text.StartsWith('$');
    public string VariableName => Text[1..];
}

/// <summary>What an `expect` demands: a result word and output fields that must match.</summary>
internal sealed record Expectation(string Result, IReadOnlyList<(string Key, string Value)> Fields);

/// <summary>A parsed line: optional binding, optional expectation, a call with key=value arguments.</summary>
internal sealed record Statement(int Line, string? Bind, Expectation? Expect, string Call, IReadOnlyDictionary<string, ArgValue> Args)
{
    /// <summary>"NAME, FD = CALL": the second name binds the fd the call returns (FAULT_QUEUE_ALLOC, VEVENTQ_ALLOC).</summary>
    public string? BindFd { get; init; }

    public bool Has(string key) => Args.ContainsKey(key);
}

/// <summary>A script that could not be parsed: FILE:LINE: what is wrong.</summary>
internal sealed class ScriptParseException(string message) : Exception(message);

/// <summary>
/// Parses a uAPI script (spec/uapi-script.md) completely before anything runs: statement shapes,
/// known calls and keys, value syntax for each key's kind, and variables bound before use.
/// </summary>
internal static class ScriptParser
{
    public static (string? ConfigPath, List<Statement> Statements) Parse(string file, IReadOnlyList<string> lines)
    {
        var statements = new List<Statement>();
        var bound = new HashSet<string>(StringComparer.Ordinal);
        string? config = null;
        for (int i = 0; i < lines.Count; i++)
        {
            int lineNo = i + 1;
            string text = lines[i];
            int hash = text.IndexOf('#', StringComparison.Ordinal);
            if (hash >= 0) text = text[..hash];
            text = text.Trim();
            if (text.Length == 0) continue;
            string Where(string what) => $"{file}:{lineNo}: {what}";

            if (text.StartsWith("config ", StringComparison.Ordinal) || text == "config")
            {
                if (statements.Count > 0 || config is not null) throw new ScriptParseException(Where("`config` must be the first statement"));
                string path = text[6..].Trim();
                if (path.Length == 0 || path.Contains(' ', StringComparison.Ordinal)) throw new ScriptParseException(Where("`config` takes one file name"));
                config = path;
                continue;
            }

            Expectation? expect = null;
            if (text.StartsWith("expect ", StringComparison.Ordinal))
            {
                int colon = text.IndexOf(':', StringComparison.Ordinal);
                if (colon < 0) throw new ScriptParseException(Where("`expect RESULT: CALL …` needs a ':' after the result"));
                var words = text[7..colon].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (words.Length == 0) throw new ScriptParseException(Where("`expect` needs a result (OK, FAULT or an errno name)"));
                string result = words[0];
                if (!ScriptCalls.IsResultWord(result))
                    throw new ScriptParseException(Where($"unknown result '{result}' (OK, FAULT, or an errno name such as EINVAL)"));
                var fields = new List<(string, string)>();
                foreach (var w in words.Skip(1))
                {
                    int eq = w.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0 || eq == w.Length - 1) throw new ScriptParseException(Where($"expected field '{w}' is not KEY=VALUE"));
                    if (w[eq + 1] == '$' && !bound.Contains(w[(eq + 2)..])) throw new ScriptParseException(Where($"{w[(eq + 1)..]} is used before it is bound"));
                    fields.Add((w[..eq], w[(eq + 1)..]));
                }
                expect = new Expectation(result, fields);
                text = text[(colon + 1)..].Trim();
            }

            string? bind = null, bindFd = null;
            int assign = text.IndexOf('=', StringComparison.Ordinal);
            // "NAME = CALL …" binds; in "CALL key=value" the text before '=' holds a space.
            if (assign > 0 && IsName(text[..assign].Trim()))
            {
                bind = text[..assign].Trim();
                text = text[(assign + 1)..].Trim();
            }
            else if (assign > 0 && text[..assign].Split(',') is [var first, var second] && IsName(first.Trim()) && IsName(second.Trim()))
            {
                (bind, bindFd) = (first.Trim(), second.Trim());
                text = text[(assign + 1)..].Trim();
            }

            var tokens = text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length == 0) throw new ScriptParseException(Where("missing call"));
            string call = tokens[0];
            if (!ScriptCalls.Table.TryGetValue(call, out var spec))
                throw new ScriptParseException(Where($"unknown call '{call}'"));
            if (bind is not null && spec.Binds is null)
                throw new ScriptParseException(Where($"{call} has no output to bind to ${bind}"));
            if (bindFd is not null && !ScriptCalls.FdOutputs.ContainsKey(call))
                throw new ScriptParseException(Where($"{call} returns no fd to bind to ${bindFd} (only {string.Join(", ", ScriptCalls.FdOutputs.Keys)})"));

            var args = new Dictionary<string, ArgValue>(StringComparer.Ordinal);
            foreach (var tok in tokens.Skip(1))
            {
                int eq = tok.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0) throw new ScriptParseException(Where($"argument '{tok}' is not key=value"));
                string key = tok[..eq], value = tok[(eq + 1)..];
                if (!spec.Keys.TryGetValue(key, out var kind))
                    throw new ScriptParseException(Where($"{call} has no argument '{key}' (allowed: {string.Join(", ", spec.Keys.Keys)})"));
                if (args.ContainsKey(key)) throw new ScriptParseException(Where($"argument '{key}' given twice"));
                var v = new ArgValue(value);
                if (v.IsVariable)
                {
                    if (!bound.Contains(v.VariableName)) throw new ScriptParseException(Where($"${v.VariableName} is used before it is bound"));
                }
                else if (ArgKinds.Check(kind, value) is string err)
                {
                    throw new ScriptParseException(Where($"{key}={value}: {err}"));
                }
                args[key] = v;
            }
            foreach (var req in spec.Required)
                if (!args.ContainsKey(req)) throw new ScriptParseException(Where($"{call} needs {req}="));
            if (bind is not null) bound.Add(bind);
            if (bindFd is not null) bound.Add(bindFd);
            statements.Add(new Statement(lineNo, bind, expect, call, args) { BindFd = bindFd });
        }
        return (config, statements);
    }

    private static bool IsName(string s)
        => s.Length > 0 && (char.IsAsciiLetter(s[0]) || s[0] == '_') && s.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    /// <summary>
    /// A 64-bit unsigned number: 0x hex, decimal, or decimal with a K/M/G/T suffix. Not
    /// <c>ByteSize</c>: uAPI values span all of u64 (U64_MAX means "everything" to IOAS_UNMAP).
    /// </summary>
    public static bool TryParseNumber(string s, out ulong value)
    {
        value = 0;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        ulong mult = 1;
        string num = s;
        if (s.Length > 1)
        {
            char last = char.ToUpperInvariant(s[^1]);
            if (last is 'K' or 'M' or 'G' or 'T')
            {
                mult = last switch { 'K' => 1UL << 10, 'M' => 1UL << 20, 'G' => 1UL << 30, _ => 1UL << 40 };
                num = s[..^1];
            }
        }
        if (!ulong.TryParse(num, NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)) return false;
        value = v * mult;
        return v == 0 || value / v == mult;
    }
}
