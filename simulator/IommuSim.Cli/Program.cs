using IommuSim.Cli.Commands;

namespace IommuSim.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        // An interrupt removes the temporary folders of the results being written (docs/limits.md).
        Simulation.Results.OutputGuard.InstallInterruptHandlers();
        return CliApp.Run(args, Console.Out, Console.Error);
    }
}
