using System.Text.Json;
using System.Text.Json.Nodes;
using IommuSim.Simulation.Running;
using IommuSim.Engine.Stats;
using IommuSim.Hardware.Iommu.Faults;
using IommuSim.Hardware.Iommu.Invalidation;

namespace IommuSim.Simulation.Results;

/// <summary>
/// Builds <c>summary.json</c> (spec/results.md) from a finished run. Key order is fixed and
/// numbers are formatted invariantly, so the same run gives byte-identical output except for
/// <c>sim.wallSeconds</c> and <c>sim.eventsPerSecond</c>.
/// </summary>
public static class SummaryBuilder
{
    public static readonly string[] WallClockKeys = ["sim.wallSeconds", "sim.eventsPerSecond"];

    public static JsonObject Build(RunOutput run)
    {
        var p = run.Platform;
        var cfg = run.Config.Config;
        var io = p.Iommu;
        double simNs = run.SimulatedNs;
        double tputNs = run.ThroughputWindowNs;

        long issued = 0, completed = 0, faulted = 0, bytes = 0;
        var dma = new LatencyHistogram("dma");
        foreach (var d in p.Devices)
        {
            issued += d.Stats.Issued;
            completed += d.Stats.Completed;
            faulted += d.Stats.Faulted;
            bytes += d.Stats.Bytes;
            dma.Add(d.Stats.DmaLatency);
        }

        var s = new JsonObject
        {
            ["name"] = cfg.Name,
            ["seed"] = cfg.Simulation.Seed,
            ["configHash"] = run.Config.Hash,
            ["design"] = cfg.Translation.Design,
            ["sim"] = new JsonObject
            {
                ["events"] = run.Events,
                ["simulatedNs"] = Round(simNs),
                ["wallSeconds"] = Round(run.WallSeconds),
                ["eventsPerSecond"] = Round(run.WallSeconds > 0 ? run.Events / run.WallSeconds : 0),
            },
            ["requests"] = new JsonObject
            {
                ["issued"] = issued,
                ["completed"] = completed,
                ["faulted"] = faulted,
                ["bytes"] = bytes,
            },
            ["throughput"] = new JsonObject
            {
                ["gbps"] = Round(tputNs > 0 ? bytes * 8.0 / tputNs : 0),
                ["mrps"] = Round(tputNs > 0 ? completed * 1000.0 / tputNs : 0),
                ["windowNs"] = Round(tputNs),
            },
            ["iotlb"] = new JsonObject
            {
                ["lookups"] = io.Iotlb.Lookups,
                ["hits"] = io.Iotlb.Hits,
                ["misses"] = io.Iotlb.Misses,
                ["missRate"] = Round(io.Iotlb.Lookups > 0 ? io.Iotlb.Misses / (double)io.Iotlb.Lookups : 0),
                ["evictions"] = io.Iotlb.Evictions,
                ["invalidatedEntries"] = io.Iotlb.InvalidatedEntries,
                ["entries"] = io.Iotlb.Capacity,
            },
            ["walks"] = new JsonObject
            {
                ["count"] = io.WalkCount,
                ["coalesced"] = io.WalksCoalesced,
                ["queued"] = io.WalksQueued,
                ["memoryReads"] = io.WalkMemoryReads,
                ["stage1Reads"] = io.WalkStage1Reads,
                ["stage2Reads"] = io.WalkStage2Reads,
                ["readsPerWalk"] = Round(io.WalkCount > 0 ? io.WalkMemoryReads / (double)io.WalkCount : 0),
                ["meanLatencyNs"] = Round(io.WalkLatency.Mean / 1000.0),
            },
            ["walkCaches"] = new JsonObject
            {
                ["hits"] = io.WalkCaches.Hits,
                ["misses"] = io.WalkCaches.Misses,
                ["nestedTlbHits"] = io.WalkCaches.NestedTlbHits,
                ["nestedTlbMisses"] = io.WalkCaches.NestedTlbMisses,
                ["pdeMisses"] = io.WalkCaches.LevelMisses(2),
                ["pdpteMisses"] = io.WalkCaches.LevelMisses(3),
                ["pml4eMisses"] = io.WalkCaches.LevelMisses(4),
                ["pml5eMisses"] = io.WalkCaches.LevelMisses(5),
            },
            ["per4KiB"] = Per4KiB(run, io),
            ["contextCache"] = new JsonObject { ["hits"] = io.ContextCache.Hits, ["misses"] = io.ContextCache.Misses },
            ["pasidCache"] = new JsonObject { ["hits"] = io.PasidCache.Hits, ["misses"] = io.PasidCache.Misses },
            ["latencyNs"] = new JsonObject
            {
                ["translation"] = Latency(io.TranslationLatency),
                ["dma"] = Latency(dma),
                ["request"] = Latency(RequestLatency(run)),
            },
            ["faults"] = Faults(io.Faults),
            ["invalidation"] = new JsonObject
            {
                ["descriptors"] = io.Invalidation.Descriptors,
                ["busyNs"] = Round(io.Invalidation.BusyPsAt(run.EndPs) / 1000.0),
                ["iotlbDescriptors"] = io.Invalidation.DescriptorsByType(InvalidationType.Iotlb) + io.Invalidation.DescriptorsByType(InvalidationType.PasidIotlb),
                ["deviceTlbDescriptors"] = io.Invalidation.DescriptorsByType(InvalidationType.DeviceTlb) + io.Invalidation.DescriptorsByType(InvalidationType.PasidDeviceTlb),
                ["waitDescriptors"] = io.Invalidation.DescriptorsByType(InvalidationType.Wait),
            },
            ["security"] = new JsonObject { ["staleTranslationsUsed"] = io.StaleTranslationsUsed + (p.Smmu?.StaleTranslationsUsed ?? 0) },
            ["ats"] = Ats(run),
            ["dmaApi"] = DmaApi(run),
            ["pcie"] = Pcie(run),
            ["iommu"] = new JsonObject
            {
                ["translations"] = io.Translations,
                ["passThrough"] = io.PassThroughTranslations,
                ["tableFetchReads"] = io.TableFetchReads,
                ["inputQueueFullRefusals"] = io.InputQueueFullRefusals,
            },
            ["memory"] = new JsonObject
            {
                ["reads"] = p.Timing.Reads,
                ["writes"] = p.Timing.Writes,
                ["walkReads"] = p.Timing.WalkReads,
                ["walkLlcHits"] = p.Timing.WalkLlcHits,
            },
            ["devices"] = Devices(run),
        };
        SmmuSummary.Apply(s, run);
        return s;
    }

    /// <summary>IOMMU work per 4 KiB of DMA data (all devices' request bytes), as Rubin et al. (SOSP'24) report it.</summary>
    private static JsonObject Per4KiB(RunOutput run, Hardware.Iommu.IommuUnit io)
    {
        long bytes = 0;
        foreach (var d in run.Platform.Devices) bytes += d.Stats.Bytes;
        double units = bytes / 4096.0;
        double Per(long v) => Round(units > 0 ? v / units : 0);
        return new JsonObject
        {
            ["iotlbMisses"] = Per(io.Iotlb.Misses),
            ["walks"] = Per(io.WalkCount),
            ["pdeCacheMisses"] = Per(io.WalkCaches.LevelMisses(2)),
            ["pdpteCacheMisses"] = Per(io.WalkCaches.LevelMisses(3)),
            ["pml4eCacheMisses"] = Per(io.WalkCaches.LevelMisses(4)),
            ["iommuMemoryReads"] = Per(io.WalkMemoryReads),
        };
    }

    private static JsonObject Pcie(RunOutput run)
    {
        long tlps = 0, dllps = 0;
        double busyUp = 0, busyDown = 0;
        int links = 0;
        foreach (var d in run.Platform.Devices)
        {
            tlps += d.Link.Upstream.Tlps + d.Link.Downstream.Tlps;
            dllps += d.Link.Upstream.Dllps + d.Link.Downstream.Dllps;
            busyUp += d.Link.Upstream.BusyPs;
            busyDown += d.Link.Downstream.BusyPs;
            links++;
        }
        double span = run.EndPs - run.MeasuredStartPs;
        double util = span > 0 && links > 0 ? Math.Max(busyUp, busyDown) / (span * links) : 0;
        return new JsonObject
        {
            ["tlps"] = tlps,
            ["dllps"] = dllps,
            ["linkUtilization"] = Round(Math.Min(1.0, util)),
            ["upstreamUtilization"] = Round(span > 0 && links > 0 ? Math.Min(1, busyUp / (span * links)) : 0),
            ["downstreamUtilization"] = Round(span > 0 && links > 0 ? Math.Min(1, busyDown / (span * links)) : 0),
            ["orderedWriteWaits"] = run.Platform.RootComplex.OrderedWaits,
            ["rawGbpsPerLink"] = Round(Hardware.Pcie.LinkArithmetic.BytesPerNs(run.Config.Config.Pcie.Generation, run.Config.Config.Pcie.Lanes) * 8),
        };
    }

    private static LatencyHistogram RequestLatency(RunOutput run)
    {
        var h = new LatencyHistogram("request");
        foreach (var w in run.Workloads) h.Add(w.RequestLatency);
        return h;
    }

    private static JsonObject DmaApi(RunOutput run)
    {
        var st = run.System.DmaApi.Stats;
        return new JsonObject
        {
            ["mode"] = run.System.DmaApi.Mode,
            ["maps"] = st.Maps,
            ["unmaps"] = st.Unmaps,
            ["flushes"] = st.Flushes,
            ["invalidationDescriptors"] = st.InvalidationDescriptors,
            ["cpuBusyNs"] = Round(st.CpuBusyPs / 1000.0),
            ["unmapWaitNs"] = Round(st.WaitPs / 1000.0),
            ["mapLatencyNs"] = Latency(st.MapLatency),
            ["unmapLatencyNs"] = Latency(st.UnmapLatency),
        };
    }

    private static JsonObject Ats(RunOutput run)
    {
        long lookups = 0, hits = 0, trs = 0, fails = 0, prs = 0, resp = 0, inval = 0;
        var rt = new LatencyHistogram("ats");
        foreach (var d in run.Platform.Devices)
        {
            var a = d.Ats;
            lookups += a.AtcLookups; hits += a.AtcHits; trs += a.TranslationRequests; fails += a.TranslationFailures;
            prs += a.PageRequests; resp += a.PageResponses; inval += a.AtcInvalidatedEntries;
            rt.Add(a.TranslationRoundTrip);
        }
        return new JsonObject
        {
            ["atcLookups"] = lookups,
            ["atcHits"] = hits,
            ["atcHitRate"] = Round(lookups > 0 ? hits / (double)lookups : 0),
            ["translationRequests"] = trs,
            ["translationFailures"] = fails,
            ["pageRequests"] = prs,
            ["pageResponses"] = resp,
            ["atcInvalidatedEntries"] = inval,
            ["translationRoundTripNs"] = Round(rt.Mean / 1000.0),
            ["pageFaultsHandled"] = run.System.Iopf?.Handled ?? 0,
            ["pageFaultsRejected"] = run.System.Iopf?.Rejected ?? 0,
        };
    }

    private static JsonObject Devices(RunOutput run)
    {
        var o = new JsonObject();
        double simNs = run.ThroughputWindowNs;
        foreach (var d in run.Platform.Devices)
        {
            var st = d.Stats;
            o[d.Name] = new JsonObject
            {
                ["issued"] = st.Issued,
                ["completed"] = st.Completed,
                ["faulted"] = st.Faulted,
                ["bytes"] = st.Bytes,
                ["tlps"] = st.Tlps,
                ["creditStalls"] = st.CreditStalls,
                ["atcHitRate"] = Round(d.Ats.AtcHitRate),
                ["throughputGbps"] = Round(simNs > 0 ? st.Bytes * 8.0 / simNs : 0),
                ["latencyNs"] = Latency(st.DmaLatency),
            };
            // Ring/queue device models add their own figures (devices.<name>.nic.*, devices.<name>.nvme.*).
            foreach (var w in run.Workloads)
            {
                if (w.Device != d || w is not Workloads.DeviceModels.IDeviceModelStats model) continue;
                var section = new JsonObject();
                foreach (var (key, value) in model.Summary(simNs))
                {
                    var parts = key.Split('.');
                    var node = section;
                    for (int i = 0; i < parts.Length - 1; i++)
                    {
                        if (node[parts[i]] is not JsonObject child) node[parts[i]] = child = new JsonObject();
                        node = child;
                    }
                    node[parts[^1]] = Round(value);
                }
                ((JsonObject)o[d.Name]!)[model.Section] = section;
            }
        }
        return o;
    }

    private static JsonObject Faults(FaultLog log)
    {
        var by = new JsonObject();
        foreach (var r in Enum.GetValues<FaultReason>())
            if (log.CountOf(r) > 0) by[r.Key()] = log.CountOf(r);
        return new JsonObject { ["count"] = log.Count, ["byReason"] = by };
    }

    /// <summary>Latency summary in ns from a histogram recorded in ps.</summary>
    public static JsonObject Latency(LatencyHistogram h) => new()
    {
        ["count"] = h.Count,
        ["mean"] = Round(h.Mean / 1000.0),
        ["p50"] = Round(h.Percentile(50) / 1000.0),
        ["p90"] = Round(h.Percentile(90) / 1000.0),
        ["p95"] = Round(h.Percentile(95) / 1000.0),
        ["p99"] = Round(h.Percentile(99) / 1000.0),
        ["p999"] = Round(h.Percentile(99.9) / 1000.0),
        ["max"] = Round(h.Max / 1000.0),
    };

    /// <summary>Rounded to 6 significant decimals so tiny float noise never reaches the file.</summary>
    public static double Round(double v) => double.IsFinite(v) ? Math.Round(v, 6) : 0;

    public static string ToJson(JsonObject o) => o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    /// <summary>Flattens to dotted keys (how sweep.csv names its columns).</summary>
    public static IEnumerable<KeyValuePair<string, JsonNode?>> Flatten(JsonNode? node, string prefix = "")
    {
        if (node is JsonObject obj)
        {
            foreach (var kv in obj)
                foreach (var x in Flatten(kv.Value, prefix.Length == 0 ? kv.Key : $"{prefix}.{kv.Key}"))
                    yield return x;
        }
        else yield return new(prefix, node);
    }
}
