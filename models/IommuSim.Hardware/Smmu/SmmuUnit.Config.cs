using IommuSim.Hardware.Smmu.Caches;
using IommuSim.Hardware.Smmu.PageTables;
using IommuSim.Hardware.Smmu.Queues;
using IommuSim.Hardware.Smmu.Tables;

namespace IommuSim.Hardware.Smmu;

public sealed partial class SmmuUnit
{
    /// <summary>One configuration fetch in flight: the transaction that started it, those waiting for it, and where it is.</summary>
    private sealed class ConfigFetch
    {
        public SmmuTransaction Leader = null!;
        public SmmuTransaction? WaitHead, WaitTail;
        public ulong Key;
        public long StartPs;
        public SmmuConfigRead Pending;
        public ulong Address;
        public StreamTableEntry Ste;
        public uint Ssid;
        // A stage-2 walk of a CD-table IPA (nesting): what it is for, where it is.
        public SmmuConfigRead AfterStage2;
        public ulong Ipa;
        public int S2Level;

        public void AddWaiter(SmmuTransaction t)
        {
            t.Next = null;
            if (WaitTail is null) WaitHead = WaitTail = t;
            else { WaitTail.Next = t; WaitTail = t; }
        }
    }

    private readonly Dictionary<ulong, ConfigFetch> _configFetches = new(64);
    private readonly Stack<ConfigFetch> _fetchPool = new();

    private static ulong FetchKey(SmmuTransaction t) => ((ulong)t.Sid << 33) | (t.HasSsid ? 1UL << 32 : 0) | (t.HasSsid ? t.Ssid : 0);

    /// <summary>
    /// A configuration-cache miss (SMMUv3 §3.3): the L1 stream-table descriptor (two-level tables) and
    /// the STE, then for stage 1 the L1CD (two-level CD tables) and the CD; under nesting each CD-table
    /// address is an IPA that a stage-2 walk translates first (no caching: configuration fetches are
    /// rare). Each dependent read is its own event, issued when the previous one has returned, so it
    /// takes memory bandwidth when it is really issued (a chain computed up front would reserve the
    /// memory for the future and delay unrelated requests). A miss on a stream whose fetch is already
    /// in flight waits for it (assumption: the fetch unit coalesces, as the walker does for pages and
    /// as the VT-d model's context fetch does); nobody uses the configuration before its last read returned.
    /// </summary>
    private void StartConfigFetch(SmmuTransaction t)
    {
        ulong key = FetchKey(t);
        if (_configFetches.TryGetValue(key, out var running))
        {
            running.AddWaiter(t);
            return;
        }
        var table = StreamTable;
        if (table is null || !table.InRange(t.Sid))
        {
            ConfigFailed(t, SmmuEventType.BadStreamId, default);
            return;
        }
        var f = _fetchPool.Count > 0 ? _fetchPool.Pop() : new ConfigFetch();
        f.Leader = t;
        f.WaitHead = f.WaitTail = null;
        f.Key = key;
        f.StartPs = _sched.Now;
        f.Ste = default;
        _configFetches.Add(key, f);
        if (table.Split is int split) IssueConfigRead(f, SmmuConfigRead.L1Std, table.Base + 8UL * (t.Sid >> split));
        else IssueConfigRead(f, SmmuConfigRead.Ste, table.Base + (ulong)StreamTableEntry.Bytes * t.Sid);
    }

    private void IssueConfigRead(ConfigFetch f, SmmuConfigRead read, ulong address)
    {
        f.Pending = read;
        f.Address = address;
        ConfigFetchReads++;
        long done = _timing.WalkRead(_sched.Now);
        Observer?.OnSmmuConfigRead(f.Leader, read, address, done);
        _sched.ScheduleAt(done, this, KindConfigRead, 0, f);
    }

    /// <summary>A read of a fetch has returned: use it, then issue the next one or finish.</summary>
    private void OnConfigRead(ConfigFetch f)
    {
        var t = f.Leader;
        switch (f.Pending)
        {
            case SmmuConfigRead.L1Std:
                if (StreamTable!.Locate(t.Sid).SteAddress is ulong sa) IssueConfigRead(f, SmmuConfigRead.Ste, sa);
                else FinishFetch(f, default, SmmuEventType.BadStreamId);
                return;
            case SmmuConfigRead.Ste:
                AfterSte(f, StreamTable.ReadSte(Memory, f.Address));
                return;
            case SmmuConfigRead.Stage2:
                OnCdTableStage2Read(f);
                return;
            case SmmuConfigRead.L1Cd:
            {
                ulong d = _mem.ReadU64(f.Address);
                if ((d & 1) == 0) { FinishFetch(f, new SmmuStreamConfig(f.Ste, default), SmmuEventType.BadSubstreamId); return; }
                int bits = f.Ste.S1Fmt == 2 ? 10 : 6;
                ReadCdTable(f, SmmuConfigRead.Cd, (d & 0x000F_FFFF_FFFF_F000UL) + (ulong)ContextDescriptor.Bytes * (f.Ssid & ((1u << bits) - 1)));
                return;
            }
            default: // Cd
            {
                var cd = ContextDescriptorTable.ReadCd(Memory, f.Address);
                var config = new SmmuStreamConfig(f.Ste, cd);
                FinishFetch(f, config, !cd.Valid || cd.Illegal() is not null ? SmmuEventType.BadCd : SmmuEventType.None);
                return;
            }
        }
    }

    private void AfterSte(ConfigFetch f, StreamTableEntry ste)
    {
        var t = f.Leader;
        f.Ste = ste;
        var alone = new SmmuStreamConfig(ste, default);
        if (!ste.Valid || ste.Illegal() is not null) { FinishFetch(f, alone, SmmuEventType.BadSte); return; }
        if (ste.Config == SteConfig.Abort) { FinishFetch(f, alone, SmmuEventType.StreamDisabled); return; }
        if (!ste.Stage1Enabled) { FinishFetch(f, alone, SmmuEventType.None); return; }
        uint ssid = 0;
        if (t.HasSsid)
        {
            if (ste.S1CdMax == 0 || t.Ssid >= 1u << ste.S1CdMax) { FinishFetch(f, alone, SmmuEventType.BadSubstreamId); return; }
            ssid = t.Ssid;
        }
        else if (ste.S1CdMax > 0)
        {
            switch (ste.S1Dss)
            {
                case 0: FinishFetch(f, alone, SmmuEventType.StreamDisabled); return;
                case 1: // transactions without a SubstreamID bypass stage 1
                    var bypass = ste with { Config = ste.Stage2Enabled ? SteConfig.Stage2 : SteConfig.Bypass };
                    FinishFetch(f, new SmmuStreamConfig(bypass, default), SmmuEventType.None);
                    return;
            }
        }
        f.Ssid = ssid;
        if (ste.S1Fmt != 0) ReadCdTable(f, SmmuConfigRead.L1Cd, ContextDescriptorTable.L1DescriptorAddress(ste.S1ContextPtr, ste.S1Fmt, ssid));
        else ReadCdTable(f, SmmuConfigRead.Cd, ste.S1ContextPtr + (ulong)ContextDescriptor.Bytes * ssid);
    }

    /// <summary>Reads a CD-table entry at <paramref name="address"/>: directly, or under nesting after a stage-2 walk of that IPA.</summary>
    private void ReadCdTable(ConfigFetch f, SmmuConfigRead read, ulong address)
    {
        var ste = f.Ste;
        if (!ste.Stage2Enabled) { IssueConfigRead(f, read, address); return; }
        if (address >> ste.S2InputBits != 0) { FinishFetch(f, new SmmuStreamConfig(ste, default), SmmuEventType.Translation); return; }
        f.AfterStage2 = read;
        f.Ipa = address;
        f.S2Level = ste.S2StartLevel;
        IssueConfigRead(f, SmmuConfigRead.Stage2, ste.S2Ttb + 8UL * (ulong)ste.S2Granule.IndexAt(address, f.S2Level, ste.S2StartLevel, ste.S2InputBits));
    }

    private void OnCdTableStage2Read(ConfigFetch f)
    {
        var ste = f.Ste;
        var g = ste.S2Granule;
        ulong d = _mem.ReadU64(f.Address);
        if (!VmsaDescriptor.IsValid(d)) { FinishFetch(f, new SmmuStreamConfig(ste, default), SmmuEventType.Translation); return; }
        if (VmsaDescriptor.IsLeaf(d, f.S2Level))
        {
            if ((VmsaDescriptor.Permissions(SmmuStage.Stage2, d, ste.S2HardwareDirty) & IommuSim.Hardware.PageTables.Access.Read) == 0)
            {
                FinishFetch(f, new SmmuStreamConfig(ste, default), SmmuEventType.Translation);
                return;
            }
            int shift = g.LeafShift(f.S2Level);
            IssueConfigRead(f, f.AfterStage2, VmsaDescriptor.LeafBase(d, shift) | (f.Ipa & ((1UL << shift) - 1)));
            return;
        }
        if (f.S2Level >= 3) { FinishFetch(f, new SmmuStreamConfig(ste, default), SmmuEventType.Translation); return; }
        f.S2Level++;
        IssueConfigRead(f, SmmuConfigRead.Stage2,
            VmsaDescriptor.TableAddress(d, g) + 8UL * (ulong)g.IndexAt(f.Ipa, f.S2Level, ste.S2StartLevel, ste.S2InputBits));
    }

    /// <summary>The fetch is over: the configuration goes into the cache (when valid) and every waiter continues with it.</summary>
    private void FinishFetch(ConfigFetch f, in SmmuStreamConfig config, SmmuEventType error)
    {
        _configFetches.Remove(f.Key);
        var t = f.Leader;
        if (error == SmmuEventType.None) ConfigCache.Insert(t.Sid, t.HasSsid ? t.Ssid : 0, config);
        var w = f.WaitHead;
        f.Leader = null!;
        f.WaitHead = f.WaitTail = null;
        long start = f.StartPs;
        _fetchPool.Push(f);
        AfterFetch(t, config, error, start, joined: false);
        while (w is not null)
        {
            var next = w.Next;
            w.Next = null;
            AfterFetch(w, config, error, start, joined: true);
            w = next;
        }
    }

    private void AfterFetch(SmmuTransaction t, in SmmuStreamConfig config, SmmuEventType error, long startPs, bool joined)
    {
        t.ConfigFetched = true;
        Observer?.OnSmmuConfigFetched(t, startPs, joined);
        if (error != SmmuEventType.None)
        {
            ConfigFailed(t, error, config);
            return;
        }
        t.Config = config;
        _sched.ScheduleAt(Clock.EdgeAfter(_sched.Now, _options.Tlb.LookupCycles), this, KindTlb, 0, t);
    }

    /// <summary>A configuration error terminates the transaction; STE.Config = abort (F_STREAM_DISABLED from the STE itself) records nothing.</summary>
    private void ConfigFailed(SmmuTransaction t, SmmuEventType error, in SmmuStreamConfig fetched)
        => Terminate(t, error, fetched.Ste.Valid && fetched.Ste.Config == SteConfig.Abort ? null : SmmuEventClass.Cd);
}
