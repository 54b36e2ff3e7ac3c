namespace IommuSim.Uapi.Designs;

/// <summary>The registry of translation designs: the only place a config name is tied to a design.</summary>
public static class TranslationDesigns
{
    public static readonly TranslationDesign Off = new OffDesign();
    public static readonly TranslationDesign Passthrough = new PassthroughDesign();
    public static readonly TranslationDesign SingleStage = new SingleStageDesign();
    public static readonly TranslationDesign Nested = new NestedDesign();
    public static readonly TranslationDesign Shadow = new ShadowDesign();

    /// <summary>Every design, in the order the docs list them.</summary>
    public static IReadOnlyList<TranslationDesign> All { get; } = [Off, Passthrough, SingleStage, Nested, Shadow];

    /// <summary>The config names, in the same order.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(d => d.Name).ToArray();

    /// <summary>The design of a config name, or null.</summary>
    public static TranslationDesign? Find(string? name) => All.FirstOrDefault(d => d.Name == name);

    /// <summary>The design of a config name; an unknown name is an <see cref="ArgumentException"/> listing the known ones.</summary>
    public static TranslationDesign Get(string name)
        => Find(name) ?? throw new ArgumentException($"unknown design '{name}' ({string.Join(", ", Names)})");

    /// <summary>The designs with translation, as prose: "single-stage, nested or shadow".</summary>
    internal static string Translating
    {
        get
        {
            var names = All.Where(d => d.Translates).Select(d => d.Name).ToList();
            return names.Count == 1 ? names[0] : $"{string.Join(", ", names.Take(names.Count - 1))} or {names[^1]}";
        }
    }
}
