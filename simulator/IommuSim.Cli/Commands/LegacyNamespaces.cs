// The config layer moved to IommuSim.Simulation.Config (docs/library.md). The uAPI script verb
// (UapiScript/, being moved into the model on another branch) still says `using IommuSim.Cli.Config;`:
// this declaration keeps that namespace name valid; the CLI's global using brings the types in.
namespace IommuSim.Cli.Config
{
}
