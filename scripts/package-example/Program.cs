using IommuSim.Simulation;

// Load and validate a config (overrides in the --set syntax), run it, read the summary: what `iommusim run` does.
var config = Simulator.LoadConfig(args.Length > 0 ? args[0] : "quickstart.json", ["simulation:maxRequests=5000"]);
var run = Simulator.Run(config);
var s = run.Flattened;   // summary.json as dotted keys (docs/results.md)
Console.WriteLine($"measured requests completed: {s["requests.completed"]}, DMAs faulted: {s["requests.faulted"]}");
Console.WriteLine($"IOTLB: {s["iotlb.lookups"]} lookups, miss rate {s["iotlb.missRate"]!.GetValue<double>():0.000}");
Console.WriteLine($"DMA latency: p99 {s["latencyNs.dma.p99"]} ns, {run.Histograms["dma"].Count} DMAs in the histogram");
if (args.Length > 1) run.WriteFolder(args[1]);   // summary.json, latency.csv, timeseries.csv, config.resolved.json
