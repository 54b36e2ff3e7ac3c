using IommuSim.Hardware.Smmu.Caches;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Tables;

namespace IommuSim.Hardware.Smmu;

public sealed partial class SmmuUnit
{
    /// <summary>
    /// Reads a stream's configuration on a configuration-cache miss: the L1 stream-table descriptor
    /// (two-level tables) and the STE, then for stage 1 the L1CD (two-level CD tables) and the CD.
    /// Each read is dependent on the one before; under nesting each CD-table address is an IPA that a
    /// stage-2 walk translates first (reads counted in <see cref="ConfigFetchReads"/>).
    /// </summary>
    private (SmmuStreamConfig Config, SmmuEventType Error) FetchConfig(SmmuTransaction t, ref long time)
    {
        var table = StreamTable;
        if (table is null || !table.InRange(t.Sid)) return (default, SmmuEventType.BadStreamId);
        var (steAddress, reads) = table.Locate(t.Sid);
        Reads(reads, ref time);
        if (steAddress is not ulong sa) return (default, SmmuEventType.BadStreamId);
        var ste = StreamTable.ReadSte(Memory, sa);
        if (!ste.Valid || ste.Illegal() is not null) return (new SmmuStreamConfig(ste, default), SmmuEventType.BadSte);
        if (ste.Config == SteConfig.Abort) return (new SmmuStreamConfig(ste, default), SmmuEventType.StreamDisabled);
        if (!ste.Stage1Enabled) return (new SmmuStreamConfig(ste, default), SmmuEventType.None);

        uint ssid = 0;
        if (t.HasSsid)
        {
            if (ste.S1CdMax == 0 || t.Ssid >= 1u << ste.S1CdMax) return (new SmmuStreamConfig(ste, default), SmmuEventType.BadSubstreamId);
            ssid = t.Ssid;
        }
        else if (ste.S1CdMax > 0)
        {
            switch (ste.S1Dss)
            {
                case 0: return (new SmmuStreamConfig(ste, default), SmmuEventType.StreamDisabled);
                case 1: // transactions without a SubstreamID bypass stage 1
                    var bypass = ste with { Config = ste.Stage2Enabled ? SteConfig.Stage2 : SteConfig.Bypass };
                    return (new SmmuStreamConfig(bypass, default), SmmuEventType.None);
            }
        }
        ulong cdAddress;
        if (ste.S1Fmt != 0)
        {
            ulong l1 = ContextDescriptorTable.L1DescriptorAddress(ste.S1ContextPtr, ste.S1Fmt, ssid);
            if (!TranslateTableAddress(ste, ref l1, ref time)) return (new SmmuStreamConfig(ste, default), SmmuEventType.Translation);
            Reads(1, ref time);
            ulong d = _mem.ReadU64(l1);
            if ((d & 1) == 0) return (new SmmuStreamConfig(ste, default), SmmuEventType.BadSubstreamId);
            int bits = ste.S1Fmt == 2 ? 10 : 6;
            cdAddress = (d & 0x000F_FFFF_FFFF_F000UL) + (ulong)ContextDescriptor.Bytes * (ssid & ((1u << bits) - 1));
        }
        else cdAddress = ste.S1ContextPtr + (ulong)ContextDescriptor.Bytes * ssid;
        if (!TranslateTableAddress(ste, ref cdAddress, ref time)) return (new SmmuStreamConfig(ste, default), SmmuEventType.Translation);
        Reads(1, ref time);
        var cd = ContextDescriptorTable.ReadCd(Memory, cdAddress);
        if (!cd.Valid || cd.Illegal() is not null) return (new SmmuStreamConfig(ste, cd), SmmuEventType.BadCd);
        return (new SmmuStreamConfig(ste, cd), SmmuEventType.None);
    }

    private void Reads(int n, ref long time)
    {
        for (int i = 0; i < n; i++) time = _timing.WalkRead(time);
        ConfigFetchReads += n;
    }

    /// <summary>Under nesting, translates a CD-table IPA through stage 2 (a walk of dependent reads, no
    /// caching: configuration fetches are rare). False when stage 2 does not map it.</summary>
    private bool TranslateTableAddress(in StreamTableEntry ste, ref ulong address, ref long time)
    {
        if (!ste.Stage2Enabled) return true;
        var g = ste.S2Granule;
        int start = ste.S2StartLevel, bits = ste.S2InputBits;
        if (address >> bits != 0) return false;
        ulong table = ste.S2Ttb;
        for (int level = start; level <= 3; level++)
        {
            ulong entry = table + 8UL * (ulong)g.IndexAt(address, level, start, bits);
            Reads(1, ref time);
            ulong d = _mem.ReadU64(entry);
            if (!VmsaDescriptor.IsValid(d)) return false;
            if (VmsaDescriptor.IsLeaf(d, level))
            {
                if ((VmsaDescriptor.Permissions(SmmuStage.Stage2, d, ste.S2HardwareDirty) & IommuSim.Hardware.PageTables.Access.Read) == 0) return false;
                int shift = g.LeafShift(level);
                address = VmsaDescriptor.LeafBase(d, shift) | (address & ((1UL << shift) - 1));
                return true;
            }
            table = VmsaDescriptor.TableAddress(d, g);
        }
        return false;
    }
}
