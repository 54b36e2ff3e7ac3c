using System.Runtime.CompilerServices;

// The walker-slot tests drive WalkerSlots with their own request and walk types.
[assembly: InternalsVisibleTo("IommuSim.Hardware.Tests")]
