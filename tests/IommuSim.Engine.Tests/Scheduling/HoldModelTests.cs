using IommuSim.Engine.Scheduling;

namespace IommuSim.Engine.Tests.Scheduling;

public class HoldModelTests
{
    [Fact]
    public void RunExecutesTheRequestedEventsAndReportsTime()
    {
        var (events, seconds) = HoldModel.Run(pending: 500, events: 20_000, seed: 1);
        Assert.Equal(20_000, events);
        Assert.True(seconds >= 0);
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(10, 0)]
    public void RunRejectsEmptyModels(int pending, long events)
        => Assert.Throws<ArgumentOutOfRangeException>(() => HoldModel.Run(pending, events, 1));

    [Fact]
    public void HoldLoopKeepsTheQueueSizeAndIsDeterministic()
    {
        var a = new HoldLoop(1000, seed: 7);
        var b = new HoldLoop(1000, seed: 7);
        long ta = 0, tb = 0;
        for (int i = 0; i < 5; i++)
        {
            ta = a.Run(3000);
            tb = b.Run(3000);
            Assert.Equal(1000, a.Scheduler.Pending);
        }
        Assert.Equal(ta, tb);
        Assert.Equal(15_000, a.Scheduler.Executed);
        Assert.True(ta > 0);
        Assert.NotEqual(ta, new HoldLoop(1000, seed: 8).Run(15_000));
    }

    [Fact]
    public void IncrementsAreExponentialWithTheRequestedMean()
    {
        long[] inc = HoldModel.ExponentialIncrements(3, 1 << 16, meanPs: 1000);
        Assert.All(inc, x => Assert.True(x >= 0));
        double mean = inc.Average();
        Assert.InRange(mean, 970, 1030);
        // P(X > mean) = e^-1 for an exponential distribution
        double above = inc.Count(x => x > 1000) / (double)inc.Length;
        Assert.InRange(above, 0.35, 0.385);
        Assert.Throws<ArgumentOutOfRangeException>(() => HoldModel.ExponentialIncrements(1, 1000));
    }

    /// <summary>Once the arrays have grown, scheduling and running events allocates nothing.</summary>
    [Theory]
    [InlineData(1_000)]
    [InlineData(20_000)]
    [InlineData(100_000)] // beyond Scheduler.LinkedTopLimit: the chunked rung 0
    public void SteadyStateAllocatesNothing(int pending)
    {
        var loop = new HoldLoop(pending, seed: 5);
        loop.Run(pending * 15L); // let every internal array reach its working size
        long before = GC.GetAllocatedBytesForCurrentThread();
        loop.Run(pending * 5L);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
    }
}
