using IommuSim.Engine.Stats;

namespace IommuSim.Hardware.Devices;

/// <summary>ATS / device-TLB / PRI statistics of one device.</summary>
public sealed class AtsStats : IResettable
{
    public long AtcLookups;
    public long AtcHits;
    public long AtcMisses;
    public long TranslationRequests;
    public long TranslationFailures;
    public long PageRequests;
    public long PageResponses;
    public long AtcInvalidatedEntries;
    public long DeviceTlbInvalidations;
    public readonly LatencyHistogram TranslationRoundTrip = new("atsRoundTrip");

    public double AtcHitRate => AtcLookups > 0 ? AtcHits / (double)AtcLookups : 0;

    public void Reset()
    {
        AtcLookups = AtcHits = AtcMisses = TranslationRequests = TranslationFailures = 0;
        PageRequests = PageResponses = AtcInvalidatedEntries = DeviceTlbInvalidations = 0;
        TranslationRoundTrip.Reset();
    }
}
