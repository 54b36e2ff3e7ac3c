using IommuSim.Engine.Rng;
using IommuSim.Engine.Scheduling;
using IommuSim.Workloads.DeviceModels;
using Xunit;

namespace IommuSim.Workloads.Tests.DeviceModels;

/// <summary>The parts every device model shares: a driver's serial CPU and the open-loop arrival process.</summary>
public class DeviceModelPartsTests
{
    /// <summary>A driver whose jobs either finish at once or hold the CPU for a while (a strict unmap).</summary>
    private sealed class Recorder(Scheduler s, long holdPs) : IDriverJobs, IEventHandler
    {
        public readonly List<(long Job, long AtPs)> Ran = [];
        private DriverCpu? _held;

        public void RunJob(DriverCpu cpu, long job)
        {
            Ran.Add((job, s.Now));
            if (holdPs == 0) cpu.JobDone();
            else
            {
                _held = cpu;
                cpu.BeginApiCall();
                s.ScheduleIn(holdPs, this);
            }
        }

        public long LastApiCallPs;

        public void OnEvent(int kind, long arg, object? payload)
        {
            LastApiCallPs = _held!.ApiCallElapsedPs;
            _held.JobDone();
        }
    }

    private sealed class Tick : IEventHandler
    {
        public void OnEvent(int kind, long arg, object? payload) { }
    }

    [Theory]
    [InlineData(0, new long[] { 100, 200, 300 })]     // each job costs its CPU time, one after another
    [InlineData(50, new long[] { 100, 250, 400 })]    // a job waiting for the DMA API holds the CPU
    public void Jobs_run_one_at_a_time_in_order(long holdPs, long[] expectedAt)
    {
        var s = new Scheduler();
        var driver = new Recorder(s, holdPs);
        var cpu = new DriverCpu(s, driver, jobPs: 100, capacity: 4);
        cpu.Enqueue(7);
        cpu.Enqueue(8);
        cpu.Enqueue(9);
        s.Run();
        Assert.Equal([7L, 8L, 9L], driver.Ran.Select(r => r.Job));
        Assert.Equal(expectedAt, driver.Ran.Select(r => r.AtPs));
        if (holdPs > 0) Assert.Equal(holdPs, driver.LastApiCallPs);
        // Busy from 0 until the last job ended: the whole span.
        Assert.Equal(1.0, cpu.BusyTime.Mean(s.Now), 9);
    }

    [Fact]
    public void Idle_time_counts_against_the_busy_fraction()
    {
        var s = new Scheduler();
        var cpu = new DriverCpu(s, new Recorder(s, 0), jobPs: 100, capacity: 4);
        cpu.BusyTime.Reset(0);
        cpu.Enqueue(1);
        s.Run();
        s.ScheduleIn(300, new Tick()); // 300 ps idle after the job
        s.Run();
        Assert.Equal(0.25, cpu.BusyTime.Mean(s.Now), 9);
    }

    [Fact]
    public void Constant_arrivals_are_the_mean_gap_rounded_to_the_picosecond()
    {
        var a = new ArrivalProcess("constant", 1, 1234.6, new SimRandom(1).AsSystemRandom());
        Assert.Equal((1235L, 1), a.Next());
        Assert.Equal((1L, 1), new ArrivalProcess("constant", 1, 0.2, new SimRandom(1).AsSystemRandom()).Next());
    }

    [Theory]
    [InlineData("poisson", 1)]
    [InlineData("bursty", 8)]
    public void Random_arrivals_keep_the_mean_rate(string arrival, int burst)
    {
        var a = new ArrivalProcess(arrival, burst, 10_000, new SimRandom(42).AsSystemRandom());
        long time = 0, ops = 0;
        for (int i = 0; i < 20_000; i++)
        {
            var (gap, count) = a.Next();
            Assert.True(gap >= 1);
            Assert.Equal(burst, count);
            time += gap;
            ops += count;
        }
        // 20 000 exponential gaps: the mean is within a few percent of 10 ns per operation.
        Assert.InRange(time / (double)ops, 9_500, 10_500);
    }

    [Fact]
    public void Same_seed_same_arrivals()
    {
        var a = new ArrivalProcess("poisson", 1, 5_000, new SimRandom(9).AsSystemRandom());
        var b = new ArrivalProcess("poisson", 1, 5_000, new SimRandom(9).AsSystemRandom());
        for (int i = 0; i < 100; i++) Assert.Equal(a.Next(), b.Next());
    }
}
