using System.Diagnostics;
using BenchmarkDotNet.Running;
using IommuSim.Benchmarks;
using IommuSim.Engine.Scheduling;

if (args.Length > 0 && args[0] == "quick")
{
    // A fast Stopwatch comparison for development, not a substitute for the BenchmarkDotNet numbers:
    //   dotnet run -c Release --project tests/IommuSim.Benchmarks -- quick [events]
    long events = args.Length > 1 ? long.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 5_000_000;
    foreach (int n in new[] { 1_000, 100_000, 1_000_000 })
    {
        var (ran, seconds) = HoldModel.Run(n, events, seed: 42);
        var pq = new PriorityQueueHoldLoop(n, 42);
        pq.Run(Math.Max(n, 10_000));
        long start = Stopwatch.GetTimestamp();
        pq.Run(events);
        double pqSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double a = ran / seconds / 1e6, b = events / pqSeconds / 1e6;
        Console.WriteLine($"N={n,9}: scheduler {a,7:F1} M events/s   PriorityQueue {b,7:F1} M events/s   ratio {a / b:F2}");
    }
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(HoldBenchmarks).Assembly).Run(args);
