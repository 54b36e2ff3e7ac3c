using System.Runtime.CompilerServices;
using IommuSim.Engine.Stats;
using IommuSim.Engine.Time;

namespace IommuSim.Hardware.Iommu;

/// <summary>
/// The remapping unit's input queue (a model block; the VT-d spec leaves it to the implementation):
/// at most <c>inputQueueDepth</c> requests in translation, one lookup issued per IOMMU cycle, each
/// taking the context- plus IOTLB-lookup cycles. A refused request stays in the root port's receive
/// buffer (withholding its credit); the root complex is told when a slot frees.
/// </summary>
internal sealed class InputQueue(int depth, int lookupCycles, ClockDomain clock) : IResettable
{
    private long _nextLookupEdge;
    private bool _refused;

    public int InFlight { get; private set; }
    public long FullRefusals { get; private set; }

    /// <summary>Takes a request at <paramref name="now"/>: false when full; else when its lookups finish.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TryEnter(long now, out long lookupDone)
    {
        if (InFlight >= depth)
        {
            FullRefusals++;
            _refused = true;
            lookupDone = 0;
            return false;
        }
        InFlight++;
        // Edge index arithmetic: one division per request.
        long start = clock.EdgeIndexAtOrAfter(now);
        if (start < _nextLookupEdge) start = _nextLookupEdge;
        _nextLookupEdge = start + 1;
        lookupDone = clock.EdgeTime(start + lookupCycles);
        return true;
    }

    /// <summary>A request left the pipeline.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Leave() => InFlight--;

    /// <summary>True once when a sender was refused and there is space again (it should retry).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool TakeSpaceSignal()
    {
        if (!_refused || InFlight >= depth) return false;
        _refused = false;
        return true;
    }

    public void Reset() => FullRefusals = 0;
}
