using System.Runtime.CompilerServices;
using IommuSim.Engine.Rng;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;

namespace IommuSim.Hardware.Memory;

/// <summary>
/// When a memory access issued at a given time completes. DRAM accesses share one bandwidth
/// server (a request occupies it for bytes / bandwidth and waits while it is busy) and then take
/// the fixed access latency; a page-walk read may instead hit the LLC (its own latency, no DRAM
/// bandwidth). Callers must ask in non-decreasing time order, which the event loop guarantees.
/// </summary>
public sealed class MemoryTimingModel : IResettable
{
    private readonly long _latencyPs;
    private readonly long _llcLatencyPs;
    private readonly double _psPerByte;
    private readonly double _llcHitRate;
    private readonly SimRandom _rng;
    private double _busyUntil;

    public MemoryTimingModel(MemoryOptions options, SimRandom rng)
    {
        Options = options;
        _latencyPs = SimTime.FromNs(options.LatencyNs);
        _llcLatencyPs = SimTime.FromNs(options.LlcLatencyNs);
        _psPerByte = 1000.0 / options.BandwidthGBps;
        _llcHitRate = options.LlcHitRateForWalks;
        _rng = rng;
    }

    public MemoryOptions Options { get; }

    public long Reads { get; private set; }
    public long Writes { get; private set; }
    public long WalkReads { get; private set; }
    public long WalkLlcHits { get; private set; }
    public long Bytes { get; private set; }
    /// <summary>Total ps requests spent waiting for bandwidth.</summary>
    public double QueueingPs { get; private set; }

    /// <summary>Completion time of a DMA read or write of <paramref name="bytes"/> issued at <paramref name="now"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long Access(long now, int bytes, bool write)
    {
        if (write) Writes++; else Reads++;
        return Dram(now, bytes);
    }

    /// <summary>Completion time of an 8-byte page-table (or context/PASID) entry read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public long WalkRead(long now)
    {
        WalkReads++;
        if (_llcHitRate > 0 && _rng.NextDouble() < _llcHitRate)
        {
            WalkLlcHits++;
            return now + _llcLatencyPs;
        }
        // A table entry read moves a 64-byte line.
        return Dram(now, 64);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private long Dram(long now, int bytes)
    {
        Bytes += bytes;
        double start = Math.Max(now, _busyUntil);
        QueueingPs += start - now;
        _busyUntil = start + bytes * _psPerByte;
        return (long)Math.Ceiling(_busyUntil) + _latencyPs;
    }

    public void Reset()
    {
        Reads = Writes = WalkReads = WalkLlcHits = Bytes = 0;
        QueueingPs = 0;
    }
}
