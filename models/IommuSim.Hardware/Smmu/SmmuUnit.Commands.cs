using IommuSim.Hardware.Smmu.Queues;

namespace IommuSim.Hardware.Smmu;

public sealed partial class SmmuUnit
{
    /// <summary>
    /// The command consumer's effect on the SMMU: CFGI_* edit the configuration cache, TLBI_* the TLB
    /// and walk caches (leaf-only TLBIs keep the walk caches), ATC_INV reaches the endpoint's ATC and
    /// takes its round trip, PRI_RESP answers a page-request group, RESUME releases a stalled transaction.
    /// </summary>
    private sealed class CommandExecutor(SmmuUnit smmu) : ISmmuCommandTarget
    {
        public long Execute(in SmmuCommand c)
        {
            switch (c.Opcode)
            {
                case SmmuOpcode.CfgiSte:
                    smmu.ConfigCache.InvalidateStream(c.Sid);
                    break;
                case SmmuOpcode.CfgiSteRange:
                    if (c.Range >= 31) smmu.ConfigCache.InvalidateAll();
                    else
                    {
                        uint span = 1u << c.Range, first = c.Sid & ~(span - 1);
                        smmu.ConfigCache.InvalidateStreams(first, first + span - 1);
                    }
                    break;
                case SmmuOpcode.CfgiCd:
                    smmu.ConfigCache.InvalidateSubstream(c.Sid, c.SubstreamValid ? c.Ssid : 0);
                    break;
                case SmmuOpcode.CfgiCdAll:
                    smmu.ConfigCache.InvalidateStream(c.Sid);
                    break;
                case SmmuOpcode.TlbiNhAll:
                    smmu.Tlb.InvalidateStage1(c.Vmid);
                    smmu.WalkCaches.InvalidateStage1(c.Vmid, null);
                    smmu.StaleInvalidated(c.Vmid, null);
                    break;
                case SmmuOpcode.TlbiNhAsid:
                    smmu.Tlb.InvalidateAsid(c.Vmid, c.Asid);
                    smmu.WalkCaches.InvalidateStage1(c.Vmid, c.Asid);
                    smmu.StaleInvalidated(c.Vmid, c.Asid);
                    break;
                case SmmuOpcode.TlbiNhVa:
                case SmmuOpcode.TlbiNhVaa:
                {
                    ushort? asid = c.Opcode == SmmuOpcode.TlbiNhVa ? c.Asid : null;
                    ulong last = TlbiLast(c);
                    smmu.Tlb.InvalidateVa(c.Vmid, asid, c.Address, last, c.TtlLeafShift);
                    if (!c.Leaf) smmu.WalkCaches.InvalidateStage1Range(c.Vmid, asid, c.Address, last);
                    smmu.StaleInvalidated(c.Vmid, asid, c.Address, last);
                    break;
                }
                case SmmuOpcode.TlbiS2Ipa:
                {
                    ulong last = TlbiLast(c);
                    smmu.Tlb.InvalidateIpa(c.Vmid, c.Address, last, c.TtlLeafShift);
                    if (!c.Leaf) smmu.WalkCaches.InvalidateStage2(c.Vmid);
                    smmu.StaleInvalidated(c.Vmid, 0, c.Address, last); // stage-2-only entries carry no ASID
                    break;
                }
                case SmmuOpcode.TlbiS12Vmall:
                    smmu.Tlb.InvalidateVmid(c.Vmid);
                    smmu.WalkCaches.InvalidateStage1(c.Vmid, null);
                    smmu.WalkCaches.InvalidateStage2(c.Vmid);
                    smmu.StaleInvalidated(c.Vmid, null);
                    break;
                case SmmuOpcode.TlbiNsnhAll:
                    smmu.Tlb.InvalidateAll();
                    smmu.WalkCaches.InvalidateAll();
                    smmu.StaleInvalidated(null, null);
                    break;
                case SmmuOpcode.AtcInv:
                    if (smmu._endpoints.TryGetValue(c.Sid, out var ep))
                    {
                        ep.InvalidateAtc(c.SubstreamValid, c.Ssid, c.Address, c.Pages);
                        smmu.AtcInvalidations++;
                        return smmu._atcRoundTripPs;
                    }
                    break;
                case SmmuOpcode.PriResp:
                    if (smmu._endpoints.TryGetValue(c.Sid, out var pri)) pri.OnPriResponse(c.SubstreamValid, c.Ssid, c.Tag, c.Action);
                    break;
                case SmmuOpcode.Resume:
                    smmu.Resume(c.Sid, c.Tag, retry: c.Action == 1);
                    break;
            }
            return 0;
        }

        /// <summary>Last address a TLBI by address covers: the address alone (TG = 0: every entry mapping it) or the
        /// end of its range, (NUM + 1) × 2^SCALE granules of TG (SMMU_IDR3.RIL).</summary>
        private static ulong TlbiLast(in SmmuCommand c)
        {
            ulong bytes = c.RangeBytes;
            return bytes == 0 ? c.Address : Math.Min(c.Address + bytes - 1, ulong.MaxValue - 1);
        }
    }

    /// <summary>
    /// A PCIe Page Request from an endpoint: written to the PRI queue. When the queue is full the request is lost
    /// (PRIQ PROD.OVFLG toggles) and, if it closed its page request group (Last), the SMMU answers the group itself
    /// with a Success PRG response so the device retries its translation and asks again (SMMUv3 §8, PRI queue overflow).
    /// </summary>
    public bool RecordPageRequest(in PriRequest r)
    {
        if (PriQueue.Record(r)) return true;
        if (r.Last && _endpoints.TryGetValue(r.Sid, out var ep))
        {
            PriAutoResponses++;
            ep.OnPriResponse(r.SubstreamValid, r.Ssid, r.Prgi, 2);
        }
        return false;
    }

    /// <summary>PRG responses the SMMU sent itself for page requests a full PRI queue lost.</summary>
    public long PriAutoResponses { get; private set; }

    /// <summary>CMD_ATC_INV commands that reached an endpoint.</summary>
    public long AtcInvalidations { get; private set; }
}
