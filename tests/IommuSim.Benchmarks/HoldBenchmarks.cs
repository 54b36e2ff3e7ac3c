using BenchmarkDotNet.Attributes;
using IommuSim.Engine.Scheduling;

namespace IommuSim.Benchmarks;

/// <summary>
/// Hold model: N events pending; each executed event schedules one more at now + Exp(mean) (precomputed
/// increments, identical for both queues). One operation = one executed event.
/// </summary>
[MemoryDiagnoser]
public class HoldBenchmarks
{
    public const int EventsPerInvoke = 1_000_000;
    private const int Seed = 42;

    private HoldLoop _scheduler = null!;
    private PriorityQueueHoldLoop _priorityQueue = null!;

    [Params(1_000, 100_000, 1_000_000)]
    public int N { get; set; }

    [GlobalSetup(Target = nameof(Scheduler))]
    public void SetupScheduler() => _scheduler = new HoldLoop(N, Seed);

    [GlobalSetup(Target = nameof(PriorityQueue))]
    public void SetupPriorityQueue() => _priorityQueue = new PriorityQueueHoldLoop(N, Seed);

    [Benchmark(OperationsPerInvoke = EventsPerInvoke)]
    public long Scheduler() => _scheduler.Run(EventsPerInvoke);

    [Benchmark(Baseline = true, OperationsPerInvoke = EventsPerInvoke)]
    public long PriorityQueue() => _priorityQueue.Run(EventsPerInvoke);
}
