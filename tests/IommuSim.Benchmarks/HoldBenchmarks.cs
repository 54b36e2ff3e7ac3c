using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using IommuSim.Engine.Scheduling;

namespace IommuSim.Benchmarks;

/// <summary>
/// Hold model: N events pending; each executed event schedules one more at now + Exp(mean) (precomputed
/// increments, identical for both queues). One operation = one executed event.
/// </summary>
/// <remarks>A short job (1 launch, 3 warm-up and 7 measured iterations) keeps the whole suite to a few minutes;
/// pass <c>--job default</c> or <c>--job medium</c> for tighter error bars.</remarks>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 3, iterationCount: 7, id: "Hold")]
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

/// <summary>
/// The same hold model with a mean increment of only 1000 ps, so that many events share a picosecond
/// (about N/1000 per ps): the tie-heavy case, like components clocked on common edges.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Throughput, launchCount: 1, warmupCount: 3, iterationCount: 7, id: "HoldTies")]
public class HoldTiesBenchmarks
{
    private const int Seed = 42;
    private const double MeanPs = 1000;

    private HoldLoop _scheduler = null!;
    private PriorityQueueHoldLoop _priorityQueue = null!;

    [Params(1_000, 100_000)]
    public int N { get; set; }

    [GlobalSetup(Target = nameof(Scheduler))]
    public void SetupScheduler() => _scheduler = new HoldLoop(N, Seed, MeanPs);

    [GlobalSetup(Target = nameof(PriorityQueue))]
    public void SetupPriorityQueue() => _priorityQueue = new PriorityQueueHoldLoop(N, Seed, MeanPs);

    [Benchmark(OperationsPerInvoke = HoldBenchmarks.EventsPerInvoke)]
    public long Scheduler() => _scheduler.Run(HoldBenchmarks.EventsPerInvoke);

    [Benchmark(Baseline = true, OperationsPerInvoke = HoldBenchmarks.EventsPerInvoke)]
    public long PriorityQueue() => _priorityQueue.Run(HoldBenchmarks.EventsPerInvoke);
}
