namespace IommuSim.Simulation.Tests;

/// <summary>Paths into the repository (found from the test's folder upwards by IommuSim.sln).</summary>
internal static class Repo
{
    public static string Root
    {
        get
        {
            var d = new DirectoryInfo(AppContext.BaseDirectory);
            while (d is not null && !File.Exists(Path.Combine(d.FullName, "IommuSim.sln"))) d = d.Parent;
            return d?.FullName ?? throw new InvalidOperationException("IommuSim.sln not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Config(string relative) => Path.Combine(Root, "configs", relative);
}

/// <summary>A temporary folder removed at the end of a test.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "iommusim-lib-tests-" + Guid.NewGuid().ToString("N"));

    public TempDir() => Directory.CreateDirectory(Path);

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
