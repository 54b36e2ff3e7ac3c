using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Running;
using IommuSim.Benchmarks;
using IommuSim.Engine.Scheduling;

if (args.Length > 0 && args[0] == "quick")
{
    // A fast Stopwatch comparison for development, not a substitute for the BenchmarkDotNet numbers:
    //   dotnet run -c Release --project tests/IommuSim.Benchmarks -- quick [events [pending]]
    // Prints events/s over wall-clock time and over this process's CPU time; the latter is less
    // disturbed when other jobs compete for the cores (caches are still shared).
    long events = args.Length > 1 ? long.Parse(args[1], CultureInfo.InvariantCulture) : 5_000_000;
    int[] sizes = args.Length > 2 ? [int.Parse(args[2], CultureInfo.InvariantCulture)] : [1_000, 100_000, 1_000_000];
    foreach (int n in sizes)
    {
        var s = Measure(new HoldLoop(n, 42).Run, n, events);
        var q = Measure(new PriorityQueueHoldLoop(n, 42).Run, n, events);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"N={n,9}: scheduler {s.Wall,6:F1} M/s wall {s.Cpu,6:F1} M/s cpu | PriorityQueue {q.Wall,6:F1} wall {q.Cpu,6:F1} cpu | ratio {s.Wall / q.Wall:F2} wall {s.Cpu / q.Cpu:F2} cpu"));
    }
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(HoldBenchmarks).Assembly).Run(args);

static (double Wall, double Cpu) Measure(Func<long, long> run, int pending, long events)
{
    for (int i = 0; i < 3; i++) run(Math.Max(pending, 1_000_000)); // warm-up and tier-up (Run is re-entered)
    double bestWall = 0, bestCpu = 0;
    for (int r = 0; r < 3; r++)
    {
        TimeSpan cpu0 = Environment.CpuUsage.TotalTime;
        long t0 = Stopwatch.GetTimestamp();
        run(events);
        double wall = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        double cpu = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds;
        bestWall = Math.Max(bestWall, events / wall / 1e6);
        bestCpu = Math.Max(bestCpu, events / cpu / 1e6);
    }
    return (bestWall, bestCpu);
}
