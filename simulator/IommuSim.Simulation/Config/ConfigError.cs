namespace IommuSim.Simulation.Config;

/// <summary>Bad input: the messages name the file and key (or line) and what is allowed. Exit code 2.</summary>
public sealed class ConfigError(IReadOnlyList<string> messages) : Exception(string.Join(Environment.NewLine, messages))
{
    public ConfigError(string message) : this([message]) { }

    public IReadOnlyList<string> Messages { get; } = messages;
}
