using IommuSim.Engine.Units;
using IommuSim.Hardware.Devices;
using IommuSim.Workloads.Generators;

namespace IommuSim.Workloads.Tests;

/// <summary>
/// Requests complete out of order (IOTLB hits overtake misses), so a request's state must stay its
/// own until it is done: every measured request's latency is recorded once, and per-request mapping
/// unmaps exactly the buffer each request mapped.
/// </summary>
public class RequestSlotTests
{
    private static WorkloadOptions Options(string mapping) => new()
    {
        Device = "dev0", Type = "random", Bytes = new ByteSize(256), WorkingSetBytes = new ByteSize(4 << 20), Mapping = mapping,
    };

    [Fact]
    public void Every_measured_premapped_request_is_counted_once_despite_out_of_order_completion()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("dev0", 3, maxOutstanding: 32);
        var budget = new RequestBudget(2_000, 20_000);
        var w = new RandomWorkload(Options("none"), dev, h.Scheduler, budget, ModelHarness.Rng(1), ModelHarness.RegionIova);
        budget.MeasuredPhaseStarting += () => w.RequestLatency.Reset();
        h.Run([w]);
        Assert.True(dev.Stats.Completed > 0);
        Assert.Equal(20_000, w.RequestLatency.Count);
    }

    [Fact]
    public void Per_request_mapping_unmaps_the_buffer_each_request_mapped()
    {
        var h = new ModelHarness();
        var dev = h.AddDevice("dev0", 3, maxOutstanding: 32);
        var budget = new RequestBudget(500, 5_000);
        // Maps of varying cost make DMAs start, and so finish, out of order.
        var api = new FakeDmaApi(h.Scheduler, "strict", mapNs: 50, unmapNs: 400, ModelHarness.RegionIova, 32 << 20);
        var w = new RandomWorkload(Options("per-request"), dev, h.Scheduler, budget, ModelHarness.Rng(2), ModelHarness.RegionIova) { DmaApi = api };
        h.Run([w]); // FakeDmaApi throws on an unmap of an IOVA that is not mapped
        Assert.True(api.Unmaps > 4_000);
        Assert.Equal(api.Maps - api.Unmaps, api.Live);
    }

    [Fact]
    public void Two_workloads_on_one_device_each_get_their_own_completions()
    {
        // DmaRequest.Owner routes a completion to the workload that issued it (the device has one Client).
        var h = new ModelHarness();
        var dev = h.AddDevice("dev0", 3, maxOutstanding: 32);
        var budget = new RequestBudget(0, 10_000);
        // Each keeps 16 of the device's 32 tags in flight (a closed loop that asked for all 32 would starve the other).
        var o = Options("none");
        o.Outstanding = 16;
        var a = new RandomWorkload(o, dev, h.Scheduler, budget, ModelHarness.Rng(1, 0), ModelHarness.RegionIova);
        var b = new RandomWorkload(o, dev, h.Scheduler, budget, ModelHarness.Rng(1, 1), ModelHarness.RegionIova);
        h.Run([a, b]);
        Assert.True(a.RequestLatency.Count > 1_000);
        Assert.True(b.RequestLatency.Count > 1_000);
        Assert.Equal(10_000, a.RequestLatency.Count + b.RequestLatency.Count);
    }
}
